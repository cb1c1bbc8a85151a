"""What tests/test_security.py builds on: a private git host over HTTPS, a recorder of every response
the app sends, the forms a secret takes on the wire, and the places Runner keeps things (the data
directory, the database, Redis) read back for scanning."""
import base64
import json
import ssl
import sys
import threading
import zlib
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

from apns_server import _certificates
from gitrepo import GitHttpServer, _Handler


class HttpsGitServer(GitHttpServer):
    """tests/gitrepo.py's smart-HTTP git server behind TLS (a CA made for the test: point git at
    `ca_path` with GIT_SSL_CAINFO), so the API takes its `https://127.0.0.1:PORT/<name>` URLs as
    it would a private host's."""

    def __init__(self, project_root, username, password, cert_dir):
        Path(cert_dir).mkdir(parents=True, exist_ok=True)
        self.ca_path, cert_path, key_path = _certificates(Path(cert_dir))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.project_root = Path(project_root)
        self.credentials = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.username = username
        self.authorizations, self.paths = [], []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.git_server = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/{name}"


FAKE_CLAUDE = r'''#!{python}
import hashlib, json, os, sys
def say(message):
    print(json.dumps(message), flush=True)
prompt = sys.argv[sys.argv.index("-p") + 1] if "-p" in sys.argv else ""
if "fail" in prompt:
    print("giving up", file=sys.stderr, flush=True)
    sys.exit(3)
cwd = os.getcwd()
say({{"type": "system", "subtype": "init", "cwd": cwd, "session_id": "s-1", "model": "sonnet", "tools": ["Write", "Bash"]}})
path = os.path.join(cwd, "hello.txt")
with open(path, "w") as f:
    f.write("hello\n")
say({{"type": "assistant", "message": {{"content": [{{"type": "tool_use", "id": "t-1", "name": "Write", "input": {{"file_path": path, "content": "hello\n"}}}}]}}}})
say({{"type": "user", "message": {{"content": [{{"type": "tool_result", "tool_use_id": "t-1", "content": "written"}}]}},
     "tool_use_result": {{"type": "create", "filePath": path}}}})
report = "\n".join(f"{{name}} {{hashlib.sha256(value.encode()).hexdigest()[:16]}}" for name, value in sorted(os.environ.items()))
say({{"type": "assistant", "message": {{"content": [{{"type": "tool_use", "id": "t-2", "name": "Bash", "input": {{"command": "env | cut -d= -f1"}}}}]}}}})
say({{"type": "user", "message": {{"content": [{{"type": "tool_result", "tool_use_id": "t-2", "content": report}}]}},
     "tool_use_result": {{"stdout": report, "stderr": "", "interrupted": False}}}})
say({{"type": "assistant", "message": {{"content": [{{"type": "text", "text": "Done."}}]}}}})
say({{"type": "result", "subtype": "success", "is_error": False, "result": {summary}, "usage": {{"input_tokens": 10, "output_tokens": 5}}}})
'''


def write_fake_claude(path, summary):
    """A stand-in for the claude CLI at `path` (the claude-code provider runs it as it would run
    `claude`): it speaks stream-json, writes hello.txt, runs one "command" whose output is its
    environment as names with a hash of each value (never a value, so a test can tell which secrets
    reached it), and ends with `summary` — or, when the prompt says "fail", exits 3. Returns `path`."""
    path = Path(path)
    path.write_text(FAKE_CLAUDE.format(python=sys.executable, summary=repr(summary)))
    path.chmod(0o755)
    return path


class ResponseRecorder:
    """WSGI middleware keeping every response the app sends — status, headers and the whole body,
    event streams included — for scanning after the fact."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.responses = []

    def __call__(self, environ, start_response):
        record = {"request": f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}?{environ.get('QUERY_STRING', '')}",
                  "status": None, "headers": [], "body": bytearray()}

        def start(status, headers, exc_info=None):
            record["status"], record["headers"] = status, list(headers)
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, start)
        try:
            for chunk in result:
                record["body"] += chunk
                yield chunk
        finally:
            if hasattr(result, "close"):
                result.close()
            self.responses.append(record)


def _base64_forms(data):
    """The base64 text of `data` wherever it sits in a longer base64 text: for each of the three
    alignments, the characters that depend on `data` alone (standard and URL-safe alphabets)."""
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6
        piece = encoded[start:end]
        forms.update((piece, piece.replace("+", "-").replace("/", "_")))
    return forms


def forms_of(secret):
    """The ways `secret` could show up: as is, URL-encoded, JSON-escaped, base64 (alone or inside
    a longer base64 text such as a Basic authorization), and — for PEM text — each line of its
    key material."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= _base64_forms(secret.encode())
    if "-----BEGIN" in secret:
        forms |= {line for line in secret.splitlines() if len(line) >= 16 and not line.startswith("-----")}
    return {form for form in forms if len(form) >= 12}


class SecretScanner:
    """`scanner.find(data)`: which of the named secrets (in any of their forms) `data` holds."""

    def __init__(self, secrets):
        self.needles = [(name, form.encode()) for name, secret in secrets.items() for form in forms_of(secret)]

    def find(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        return sorted({name for name, needle in self.needles if needle in data})


def files_under(root):
    """{path: bytes} of every file below `root`."""
    return {path: path.read_bytes() for path in Path(root).rglob("*") if path.is_file() and not path.is_symlink()}


def database_rows(db):
    """{table: [row as text]} of every table Runner keeps."""
    rows = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows[table.name] = [repr(tuple(row)) for row in conn.execute(table.select())]
    return rows


def redis_values(connection):
    """{key: [bytes]} of every key in the Redis database, values of every type (compressed RQ job
    payloads inflated too)."""
    found = {}
    for key in connection.scan_iter(count=1000):
        kind = connection.type(key).decode()
        if kind == "string":
            values = [connection.get(key)]
        elif kind == "hash":
            values = [part for pair in connection.hgetall(key).items() for part in pair]
        elif kind == "list":
            values = connection.lrange(key, 0, -1)
        elif kind == "set":
            values = list(connection.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in connection.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [part for _, fields in connection.xrange(key) for pair in fields.items() for part in pair]
        else:
            values = []
        inflated = []
        for value in values:
            inflated.append(value)
            try:
                inflated.append(zlib.decompress(value))
            except (zlib.error, TypeError):
                pass
        found[key] = inflated
    return found
