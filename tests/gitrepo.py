"""Real git repositories for the tests: made in tmp with an explicit author and inspected with the
git binary directly, never through the code under test; and a smart-HTTP git server."""
import base64
import os
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

# What the test HTTP server accepts: the user name Runner sends by default, and a token.
HTTP_USER = "x-access-token"
HTTP_TOKEN = "ghp_s3cretT0kenValue1234567890"
AUTHOR = ["-c", "user.name=Test Author", "-c", "user.email=test@example.com"]


def git(repo, *args, input=None):
    result = subprocess.run(
        ["git", *AUTHOR, "-C", str(repo), *map(str, args)], capture_output=True, input=input, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"git {args} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode("utf-8", "surrogateescape")


def write(root, files):
    """files: {relative path: str | bytes | None (delete it)}."""
    for name, content in files.items():
        path = Path(root) / name
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def make_repo(path, files=None, branch="main"):
    """A repository on `branch`, with one commit of `files` when given (none: an unborn branch)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    if files:
        write(path, files)
        commit_all(path, "initial")
    return path


def origin_url(path, files=None, branch="main"):
    """A repository at `path` with one commit (a small default tree) on `branch`; its file:// URL."""
    files = files or {"README.md": "# demo\n", "src/app.py": "print('hi')\n"}
    return make_repo(path, files, branch).as_uri()


def commit(repo, files, message="change"):
    """Write `files` and commit everything; returns the new HEAD."""
    write(repo, files)
    return commit_all(repo, message)


def commit_all(repo, message="change"):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


def head(repo, rev="HEAD"):
    return git(repo, "rev-parse", rev).strip()


def tree_state(root):
    """{relative path: (content, executable)} of every file under `root` but `.git`; symlinks as
    ("->", target)."""
    root = Path(root)
    state = {}
    for directory, dirnames, filenames in os.walk(root):
        if Path(directory) == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative == ".git":
                continue
            if path.is_symlink():
                state[relative] = ("->", os.readlink(path))
            else:
                state[relative] = (path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return state


def process_alive(pid):
    """Whether `pid` runs (a zombie waiting for a parent that is gone does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def directories(root):
    root = Path(root)
    found = set()
    for directory, dirnames, _ in os.walk(root):
        if Path(directory) == root and ".git" in dirnames:
            dirnames.remove(".git")
        found.update((Path(directory) / name).relative_to(root).as_posix() for name in dirnames)
    return found


class GitHttpServer:
    """git's smart HTTP protocol (`git http-backend` run as a CGI) on loopback, behind Basic auth:
    what a private https remote does, minus TLS."""

    def __init__(self, project_root, username, password):
        self.project_root = Path(project_root)
        self.credentials = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.username = username
        self.authorizations = []  # the Authorization header of every request, None when absent
        self.paths = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.git_server = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self._cgi()

    def do_POST(self):  # noqa: N802
        self._cgi()

    def log_message(self, *args):
        pass

    def _cgi(self):
        server = self.server.git_server
        authorization = self.headers.get("Authorization")
        server.authorizations.append(authorization)
        server.paths.append(self.path)
        if authorization != server.credentials:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(server.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": server.username,
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_chunked(self):
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()
