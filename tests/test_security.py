"""Security checks (issue 7, item 3), each against the real app, a real git host over HTTPS, the real
RQ worker and the APNs stand-in:

- no secret value (server params, the secret key, passwords, tokens) leaves Runner: not in any
  response of a whole scenario, a log record, a file under the data directory, a database row or a
  Redis value, in any of its usual encodings; an agent gets its own API key and nothing of Runner's;
- one user's token finds nothing of another user's, on every route with a path parameter (404);
- expired and revoked tokens are refused on every protected operation (401);
- path parameters cannot reach outside the data directory, whatever they hold (never a 5xx);
- bodies over MAX_CONTENT_LENGTH are 413 problems, with or without a Content-Length;
- text from users and agents (titles, notes, summaries, names) with CR/LF and control characters
  forges no commit trailer, HTTP header, APNs header or alert line, and no log line; text no
  database can store (NUL, unpaired surrogates) is a 422 in a request, not a 500, and fails no run
  when an agent prints it.

Routes come from the app's own OpenAPI document and URL map, so new routes are checked as they come.
"""
import datetime as dt
import hashlib
import http.client
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apns_server import ApnsStandIn, signing_key
from gitrepo import git, make_repo, origin_url
from helpers import PASSWORD, ApiClient, assert_problem, worker_env
from security_helpers import (
    HttpsGitServer,
    ResponseRecorder,
    SecretScanner,
    database_rows,
    files_under,
    redis_values,
    write_fake_claude,
)

RUNS = "/api/runs"
PARAMS = "/api/settings/server-params"
KEY_ID, TEAM_ID, TOPIC = "KEY1234567", "TEAM123456", "dev.runner.app"
DEVICE = "ab" * 32
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

# Text a user or an agent controls, aimed at every place it ends up.
TITLE = "Add hello\r\nRunner-Run: 999\r\nX-Injected: yes\x1b[2J\x07"
NOTES = "Looks good\r\nX-Injected: yes\r\n\r\nRunner-Run: 997"
DEVICE_NAME = "Phone\r\nX-Injected: yes"
SUMMARY = (
    "Added hello.txt.\n\nRunner-Run: 999\n---\nRunner-Run: 998\n"
    "# ------------------------ >8 ------------------------\nRunner-Run: 996"
)
# The `command` provider's agent: its environment, as names with a hash of each value, one log line each.
ENV_AGENT = r"""
import hashlib, os
for name, value in sorted(os.environ.items()):
    print("ENV", name, hashlib.sha256(value.encode()).hexdigest()[:16], flush=True)
"""


def _fingerprint(value):
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _spec(client):
    return client.get("/api/openapi.json").get_json()


def _operations(spec):
    """(method, OpenAPI path, operation) of every documented operation."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def _path_parameters(path):
    return re.findall(r"{([^}]+)}", path)


def _fill(path, values):
    return re.sub(r"{([^}]+)}", lambda m: str(values[m[1]]), path)


def _events(api, run_id):
    found, cursor = [], None
    while True:
        page = api.get(f"{RUNS}/{run_id}/events", query_string={"limit": 200, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.get_json()
        found += page.get_json()["data"]
        cursor = page.get_json()["meta"]["nextCursor"]
        if not cursor:
            return found


# --- a whole scenario -----------------------------------------------------------------------------


class _KeepRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class Scenario:
    """Everything a user does with Runner, through the API, with every secret server param set; what
    it leaves is kept here for the checks: ids, clients, servers, the recorded responses."""


@pytest.fixture
def scenario(app, client, admin_api, make_user, login, tmp_path, monkeypatch, run_jobs, caplog):
    caplog.set_level(logging.DEBUG)
    recorder = ResponseRecorder(app.wsgi_app)
    app.wsgi_app = recorder
    s = Scenario()
    s.recorder = recorder
    # Every record the scenario logs, kept past the setup phase for the checks.
    kept = _KeepRecords()
    logging.getLogger().addHandler(kept)
    s.log_records = lambda: kept.records

    # The secrets: each server param that is secret, the key that signs and encrypts, a password.
    private_key, public_key = signing_key()
    s.secrets = {
        "providers.anthropicApiKey": "sk-ant-api03-" + secrets.token_urlsafe(32),
        "providers.openaiApiKey": "sk-proj-" + secrets.token_urlsafe(32),
        "git.httpsToken": "ghp_" + secrets.token_hex(18),
        "apns.privateKey": private_key,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "password": PASSWORD,
    }
    # As on a worker host: Runner's configuration in the environment (the OpenAI key a secret
    # server param set there, not stored), a HOME of the agent's own, git trusting the test CA.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RUNNER_SECRET_KEY", s.secrets["SECRET_KEY"])
    monkeypatch.setenv("RUNNER_PROVIDERS_OPENAI_API_KEY", s.secrets["providers.openaiApiKey"])

    served = tmp_path / "served"
    seed = make_repo(tmp_path / "seed", {
        "README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n",
        "migrations/001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
    })
    git(tmp_path, "clone", "-q", "--bare", seed, served / "origin.git")
    s.origin = served / "origin.git"
    s.git_server = HttpsGitServer(served, "x-access-token", s.secrets["git.httpsToken"], tmp_path / "git-tls")
    monkeypatch.setenv("GIT_SSL_CAINFO", s.git_server.ca_path)
    s.apns = ApnsStandIn(tmp_path, public_key, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC)

    s.agent = write_fake_claude(tmp_path / "fake-claude", SUMMARY)
    try:
        _play(s, app, client, admin_api, make_user, login, run_jobs)
        yield s
    finally:
        logging.getLogger().removeHandler(kept)
        s.git_server.close()
        s.apns.close()


def _ok(response, *statuses):
    """The JSON (or text) of an answer with one of `statuses` (default 200)."""
    assert response.status_code in (statuses or (200,)), (
        response.request.path, response.status_code, response.get_data(as_text=True)[:2000])
    if response.status_code == 204:
        return None
    return response.get_json() if response.is_json else response.get_data(as_text=True)


def _play(s, app, client, admin_api, make_user, login, run_jobs):
    admin = admin_api
    _ok(admin.put(PARAMS, json={
        "providers.anthropicApiKey": s.secrets["providers.anthropicApiKey"],
        "git.httpsToken": s.secrets["git.httpsToken"],
        "git.httpsTokenHosts": s.git_server.url("").split("/")[2],
        "apns.keyId": KEY_ID, "apns.teamId": TEAM_ID, "apns.topic": TOPIC,
        "apns.privateKey": s.secrets["apns.privateKey"],
        "apns.endpoint": s.apns.url, "apns.caBundle": s.apns.ca_path,
        "safety.autoGitPush": True,
    }))
    # Refusals must not echo what they refuse.
    _ok(admin.put(PARAMS, json={"git.httpsToken": [s.secrets["git.httpsToken"]]}), 422)
    _ok(admin.put(PARAMS, json={"providers.anthropicApiKey": s.secrets["providers.anthropicApiKey"], "no.such": 1}), 422)
    claude = {"enabled": True, "command": [str(s.agent), "-p", "{prompt}"]}
    _ok(admin.put("/api/settings/providers/claude-code", json=claude))
    _ok(admin.get(PARAMS))
    _ok(admin.get("/api/settings/providers"))
    _ok(admin.get("/metrics"))

    s.owner_id, s.owner_email = make_user()
    user = login(s.owner_email)
    s.user = user
    _ok(user.get("/api/auth/me"))
    _ok(user.get(PARAMS))
    device = {"token": DEVICE, "environment": "sandbox", "name": DEVICE_NAME}
    s.device_id = _ok(user.post("/api/devices", json=device), 201)["id"]
    _ok(user.get("/api/devices"))

    # A private repository over HTTPS (the token answers its challenge), cloned and indexed.
    project = _ok(user.post("/api/projects", json={"name": "demo", "repositoryUrl": s.git_server.url("origin.git")}), 202)
    s.project_id = project["id"]
    run_jobs()
    project = _ok(user.get(f"/api/projects/{s.project_id}"))
    assert project["status"] == "ready", project
    # And one that fails: git's own words come back, credentials scrubbed.
    missing = _ok(user.post("/api/projects", json={"name": "gone", "repositoryUrl": s.git_server.url("gone.git")}), 202)
    run_jobs()
    assert _ok(user.get(f"/api/projects/{missing['id']}"))["status"] == "error"

    for path in ("", "/map", "/schema", "/diagrams", "/docs", "/changelog", "/snapshots"):
        _ok(user.get(f"/api/projects/{s.project_id}{path}"))
    _ok(user.post(f"/api/projects/{s.project_id}/search", json={"query": "main"}))
    snapshot = {"description": "before\r\nX-Injected: yes"}
    s.snapshot_id = _ok(user.post(f"/api/projects/{s.project_id}/snapshots", json=snapshot), 201)["id"]
    _ok(user.get(f"/api/snapshots/{s.snapshot_id}"))
    _ok(user.post(f"/api/snapshots/{s.snapshot_id}/compare", json={"against": "current"}))

    # A run of the claude-code provider (the stand-in CLI), announced to the device when it completes.
    draft = _ok(user.post(RUNS, json={"projectId": s.project_id, "title": TITLE, "prompt": "Add a hello file",
                                      "selectedAgent": "claude-code", "selectedModel": "sonnet"}), 201)
    s.run_id = draft["id"]
    _ok(user.post(f"{RUNS}/{s.run_id}/start"), 202)
    run_jobs()
    run = _ok(user.get(f"{RUNS}/{s.run_id}"))
    assert run["status"] == "completed", (run, [(e["eventType"], e["message"]) for e in _events(user, s.run_id)])

    _events(user, s.run_id)
    # An EventSource's way in: a stream token in the query (a credential as well, for 5 minutes).
    s.stream_token = _ok(user.post("/api/auth/stream-token"), 201)["streamToken"]
    _ok(client.get(f"{RUNS}/{s.run_id}/events/stream", query_string={"streamToken": s.stream_token}))
    _ok(user.get(f"{RUNS}/{s.run_id}/events/stream"))
    s.file_ids = [f["id"] for f in _ok(user.get(f"{RUNS}/{s.run_id}/files"))["data"]]
    for file_id in s.file_ids:
        _ok(user.get(f"{RUNS}/{s.run_id}/files/{file_id}"))
    for path in ("", "/diff", "/snapshots", "/summary", "/reviews", "/notifications"):
        _ok(user.get(f"{RUNS}/{s.run_id}{path}"))
    s.command_ids, s.outputs = [], []
    for command in _ok(user.get(f"{RUNS}/{s.run_id}/commands"))["data"]:
        s.command_ids.append(command["id"])
        detail = _ok(user.get(f"{RUNS}/{s.run_id}/commands/{command['id']}"))
        for url in (detail["stdoutUrl"], detail["stderrUrl"]):
            if url:
                s.outputs.append(_ok(client.get(url)))
    assert s.file_ids and s.command_ids and s.outputs

    # A run of the `command` provider, which is given no key at all.
    command = {"enabled": True, "command": [sys.executable, "-c", ENV_AGENT, "{prompt}"]}
    _ok(admin.put("/api/settings/providers/command", json=command))
    draft = {"projectId": s.project_id, "title": "Env", "prompt": "env", "selectedAgent": "command"}
    other = _ok(user.post(RUNS, json=draft), 201)["id"]
    _ok(user.post(f"{RUNS}/{other}/start"), 202)
    run_jobs()
    assert _ok(user.get(f"{RUNS}/{other}"))["status"] == "completed"
    s.command_agent_report = [e["message"] for e in _events(user, other) if e["message"].startswith("ENV ")]

    # Review, commit, push (with a token elevated to git:push), then pull and regenerate the docs.
    _ok(user.post(f"{RUNS}/{s.run_id}/approve", json={"notes": NOTES, "commit": True}))
    elevated = _ok(user.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["git:push"]}), 201)
    pusher = ApiClient(client, elevated["token"])
    _ok(pusher.post(f"{RUNS}/{s.run_id}/push"), 202)
    run_jobs()
    run = _ok(user.get(f"{RUNS}/{s.run_id}"))
    assert run["push"]["status"] == "pushed", run
    _ok(user.post(f"/api/projects/{s.project_id}/pull"), 202)
    _ok(user.post(f"/api/projects/{s.project_id}/docs/regenerate"), 202)
    run_jobs()
    _ok(user.get(f"/api/projects/{s.project_id}"))
    _ok(user.get(f"{RUNS}/{s.run_id}/notifications"))
    _ok(user.get(f"{RUNS}/{s.run_id}/reviews"))
    s.tokens = [user.token, pusher.token, admin.token]
    _ok(pusher.post("/api/auth/logout"), 204)


def test_no_secret_leaves_runner_in_a_response_a_log_a_file_the_database_or_redis(app, scenario, redis_conn):
    s = scenario
    from runner.extensions import db

    server_secrets = dict(s.secrets)
    # Credentials Runner issued or made: tokens (their secret part), the stream token, and the APNs
    # provider token it signed with the key. (git's Basic authorization is the git token in base64.)
    credentials = {f"token {i}": token.partition("|")[2] for i, token in enumerate(s.tokens)}
    credentials["stream token"] = s.stream_token
    pushes = s.apns.to(DEVICE)
    assert pushes, s.apns.refusals
    credentials["apns provider token"] = pushes[0].headers["authorization"].removeprefix("bearer ")
    everything = SecretScanner({**server_secrets, **credentials})

    # Every response (headers and bodies, streams and command output included) of the scenario.
    assert len(s.recorder.responses) >= 50
    # Their answer is the token itself; a stream's URL carries its stream token.
    issuing = ("POST /api/auth/token?", "POST /api/auth/elevate?", "POST /api/auth/stream-token?")
    for record in s.recorder.responses:
        assert not record["status"].startswith("5"), record
        text = bytes(record["body"]) + "\n".join(f"{k}: {v}" for k, v in record["headers"]).encode()
        scanner = SecretScanner(server_secrets) if record["request"].startswith(issuing) else everything
        assert scanner.find(text) == [], (record["request"], scanner.find(text))

    # Every log record, as the handlers would write it, down to DEBUG.
    assert len(s.log_records()) > 50
    for record in s.log_records():
        line = logging.Formatter().format(record) + repr(record.args)
        assert everything.find(line) == [], (record.name, everything.find(line))

    # Every file Runner wrote (checkouts, worktrees, their .git, command output, indexes).
    data_dir = app.config["DATA_DIR"]
    files = files_under(data_dir)
    assert any(path.name == "config" and path.parent.name == ".git" for path in files)
    for path, content in files.items():
        assert everything.find(content) == [], (path, everything.find(content))
    git_config = (Path(data_dir) / "workspaces" / "projects" / str(s.project_id) / "repo" / ".git" / "config").read_text()
    assert "credential" not in git_config and "@" not in git_config, git_config

    # Every row of every table: secrets encrypted, tokens and passwords hashed.
    with app.app_context():
        rows = database_rows(db)
    assert rows["server_params"] and rows["personal_access_tokens"]
    for table, table_rows in rows.items():
        for row in table_rows:
            assert everything.find(row) == [], (table, everything.find(row))

    # Every Redis value (queued jobs, idempotency records, rate limits, locks).
    for key, values in redis_values(redis_conn).items():
        for value in [key, *values]:
            assert everything.find(value) == [], (key, everything.find(value))

    # The agent had its API key, and nothing else of Runner's: no RUNNER_* variable, no other secret.
    report = dict(line.split(" ", 1) for output in s.outputs for line in output.splitlines() if " " in line)
    assert report.get("ANTHROPIC_API_KEY") == _fingerprint(s.secrets["providers.anthropicApiKey"]), report
    assert [name for name in report if name.startswith("RUNNER_")] == []
    others = {name: value for name, value in s.secrets.items() if name != "providers.anthropicApiKey"}
    assert {name for name, value in others.items() if _fingerprint(value) in report.values()} == set()
    # The `command` provider's agent had no key at all.
    report = dict(line.split(" ")[1:3] for line in s.command_agent_report)
    assert "PATH" in report and [name for name in report if name.startswith("RUNNER_")] == []
    assert {name for name, value in s.secrets.items() if _fingerprint(value) in report.values()} == set()

    # What settings say of them: set, and where from; never a value.
    params = {p["key"]: p for p in s.user.get(PARAMS).get_json()["data"]}
    for key in ("providers.anthropicApiKey", "providers.openaiApiKey", "git.httpsToken", "apns.privateKey"):
        assert (params[key]["value"], params[key]["isSet"], params[key]["default"]) == ("••••", True, None), params[key]
    assert params["providers.openaiApiKey"]["source"] == "environment"
    assert params["git.httpsToken"]["source"] == "stored"


# --- one user's token against another user's resources --------------------------------------------

# Sample bodies for operations that need one, so that a refusal can only be about whose it is.
BODIES = {
    ("post", "/api/projects/{project_id}/search"): {"query": "main"},
    ("post", "/api/projects/{project_id}/snapshots"): {"description": "mine now"},
    ("put", "/api/projects/{project_id}"): {"name": "taken"},
    ("post", "/api/snapshots/{snapshot_id}/compare"): {"against": "current"},
    ("post", "/api/runs/{run_id}/approve"): {"notes": "mine"},
    ("post", "/api/runs/{run_id}/reject"): {"notes": "mine"},
}
# Path parameters that name nothing a user owns: a provider (server-wide, admins only) and a signed
# output link (a capability: whoever holds it may read, until it expires).
NOT_OWNED = {"key", "token"}


def test_another_users_token_finds_none_of_their_resources_on_any_route(app, client, scenario, make_user):
    s = scenario
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    owned = {"project_id": s.project_id, "run_id": s.run_id, "snapshot_id": s.snapshot_id, "device_id": s.device_id,
             "file_id": s.file_ids[0], "command_id": s.command_ids[0], "slug": "project-map"}
    # B holds every ability there is (as `runner tokens create … --abilities '*'` would give), so
    # nothing but ownership can stand between B and A's rows.
    b_id, _ = make_user()
    with app.app_context():
        _, b_token = auth.issue_token(db.session.get(User, b_id), "b", ["*"])
        db.session.commit()
    b = ApiClient(client, b_token)
    before = {path: s.user.get(path).get_data() for path in (
        f"/api/projects/{s.project_id}", f"{RUNS}/{s.run_id}", f"{RUNS}/{s.run_id}/reviews", "/api/devices",
        f"/api/projects/{s.project_id}/snapshots", f"{RUNS}/{s.run_id}/events")}

    checked = []
    for method, path, operation in _operations(_spec(client)):
        names = _path_parameters(path)
        assert set(names) <= set(owned) | NOT_OWNED, f"classify the path parameters of {method.upper()} {path}"
        if not set(names) & set(owned):
            continue
        url = _fill(path, owned)
        if method == "get":  # A sees it: the id is real
            assert s.user.get(url).status_code != 404, url
        body = BODIES.get((method, path))
        if body is None and operation.get("requestBody", {}).get("required"):
            pytest.fail(f"add a sample body for {method.upper()} {path} to BODIES")
        assert_problem(b.open(method.upper(), url, json=body), 404)
        checked.append((method, path))
    assert len(checked) >= 35, checked

    # Ids in bodies and filters: refused exactly as ids that do not exist.
    missing = 2**31 - 1
    draft = {"title": "t", "prompt": "p", "selectedAgent": "claude-code", "selectedModel": "sonnet"}
    theirs = assert_problem(b.post(RUNS, json={"projectId": s.project_id, **draft}), 422)
    nobodys = assert_problem(b.post(RUNS, json={"projectId": missing, **draft}), 422)
    expected = [message.replace(str(missing), str(s.project_id)) for message in nobodys["errors"]["projectId"]]
    assert theirs["errors"]["projectId"] == expected
    assert b.get(RUNS, query_string={"projectId": s.project_id}).get_json()["data"] == []
    assert b.get("/api/projects").get_json()["data"] == []
    assert b.get("/api/devices").get_json()["data"] == []

    # And nothing of A's changed.
    assert {path: s.user.get(path).get_data() for path in before} == before


def test_a_local_path_into_the_data_directory_is_no_repository(app, user_api, tmp_path):
    """With local repositories allowed (development), a path into the data directory would clone
    another user's checkout or worktree."""
    data_dir = app.config["DATA_DIR"]
    for url in (f"file://{data_dir}/workspaces/projects/1/repo", f"{data_dir}/workspaces/projects/1/repo",
                f"file://{tmp_path}/outside/../data/workspaces", data_dir):
        body = assert_problem(user_api.post("/api/projects", json={"name": "x", "repositoryUrl": url}), 422)
        assert body["errors"]["repositoryUrl"] == ["Runner's own data directory cannot be a project's repository."]
    # A link from elsewhere into it is followed before judging.
    os.symlink(data_dir, tmp_path / "innocent")
    linked = str(tmp_path / "innocent" / "workspaces")
    assert_problem(user_api.post("/api/projects", json={"name": "x", "repositoryUrl": linked}), 422)
    created = user_api.post("/api/projects", json={"name": "x", "repositoryUrl": origin_url(tmp_path / "origin")})
    assert created.status_code == 202, created.get_json()


# --- expired and revoked tokens -------------------------------------------------------------------


def _protected(spec):
    return [(method, path) for method, path, operation in _operations(spec) if operation.get("security") != []]


def _assert_refused_everywhere(client, token, spec):
    api = ApiClient(client, token)
    for method, path in _protected(spec):
        url = _fill(path, {name: 1 for name in _path_parameters(path)})
        body = assert_problem(api.open(method.upper(), url), 401, "unauthenticated")
        assert body["detail"] and api.open(method.upper(), url).headers["WWW-Authenticate"].startswith("Bearer")


def _app_with(make_app, config, **settings):
    """Another app on the test's database and Redis, with some settings changed (pytest-flask
    builds the `app` fixture before any other fixture could change its config)."""
    for name, value in settings.items():
        setattr(config, name, value)
    return make_app(config)


def test_expired_tokens_are_refused_on_every_protected_operation(app, make_app, config, make_user):
    client = _app_with(make_app, config, TOKEN_TTL_SECONDS=3, ELEVATION_TTL_SECONDS=3).test_client()
    _, email = make_user(admin=True)
    issued = client.post("/api/auth/token", json={"email": email, "password": PASSWORD}).get_json()
    api = ApiClient(client, issued["token"])
    raised = api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]}).get_json()
    elevated = ApiClient(client, raised["token"])
    stream_token = api.post("/api/auth/stream-token").get_json()["streamToken"]
    assert api.get("/api/auth/me").status_code == 200 and elevated.get(PARAMS).status_code == 200
    spec = _spec(client)
    assert len(_protected(spec)) >= 50
    expired = max(dt.datetime.fromisoformat(token["expiresAt"].replace("Z", "+00:00")) for token in (issued, raised))
    time.sleep(max(0.0, (expired - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.1)
    for token in (api.token, elevated.token):
        _assert_refused_everywhere(client, token, spec)
    # A stream token outlives nothing it stands for.
    assert_problem(client.get(f"{RUNS}/1/events/stream", query_string={"streamToken": stream_token}), 401)


def test_revoked_tokens_are_refused_on_every_protected_operation(app, client, make_user, login):
    _, email = make_user(admin=True)
    api, other = login(email), login(email)
    stream_token = api.post("/api/auth/stream-token").get_json()["streamToken"]
    assert api.post("/api/auth/logout").status_code == 204
    _assert_refused_everywhere(client, api.token, _spec(client))
    assert_problem(client.get(f"{RUNS}/1/events/stream", query_string={"streamToken": stream_token}), 401)
    # Only the token that logged out is gone.
    assert other.get("/api/auth/me").status_code == 200


# --- path traversal -------------------------------------------------------------------------------


def _traversals(canary):
    """Values for a path parameter aimed at `canary` (a file next to the data directory): dot-dot
    runs raw, percent-encoded, double-encoded, with backslashes and overlong UTF-8; absolute
    paths; NUL; very long values."""
    name = canary.name
    values = {
        "..", "../..", "%2e%2e", "%2e%2e%2f%2e%2e%2f" + name, "..%2f..%2f" + name, "%252e%252e%252f" + name,
        "..%5c..%5c" + name, "%c0%ae%c0%ae%c0%af" + name, "%2F" + str(canary).lstrip("/").replace("/", "%2F"),
        "/" + str(canary), "%00", "a%00b", name + "%00.md", "1%00", "-1", "0", "1e3", "9" * 40, "x" * 5000,
    }
    for depth in range(1, 7):
        values |= {"../" * depth + name, "%2e%2e%2f" * depth + name, "..%2F" * depth + name, "..\\" * depth + name}
    return sorted(values)


def test_no_path_parameter_reads_outside_the_data_directory(app, client, make_user, tmp_path, run_jobs):
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    canary = tmp_path / "canary.txt"
    secret = "canary-" + secrets.token_hex(16)
    canary.write_text(secret)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "canary.txt").write_text(secret)
    user_id, _ = make_user(admin=True)
    with app.app_context():
        _, token = auth.issue_token(db.session.get(User, user_id), "all", ["*"])
        db.session.commit()
    api = ApiClient(client, token)
    created = api.post("/api/projects", json={"name": "p", "repositoryUrl": origin_url(tmp_path / "origin")})
    run_jobs()
    project_id = created.get_json()["id"]
    assert api.get(f"/api/projects/{project_id}").get_json()["status"] == "ready"

    # Every route of the app, API or not; each argument in turn takes each value, the others a real id.
    real = {"project_id": project_id}
    requests = 0
    for rule in app.url_map.iter_rules():
        if not rule.arguments:
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        for argument in sorted(rule.arguments):
            for value in _traversals(canary):
                url = rule.rule
                for name in rule.arguments:
                    filled = value if name == argument else str(real.get(name, 1))
                    url = re.sub(rf"<(?:[^:<>]+:)?{name}>", lambda m: filled, url)
                for method in methods:
                    response = api.open(method, url, json={} if method in ("POST", "PUT") else None)
                    requests += 1
                    assert response.status_code < 500, (method, url, response.get_data(as_text=True)[:500])
                    assert secret.encode() not in response.get_data(), (method, url)
                    if url.startswith("/api/") and response.status_code >= 400:
                        assert response.mimetype == "application/problem+json", (method, url)
    assert requests > 1000


# --- oversized bodies -----------------------------------------------------------------------------

LIMIT = 64 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _padded(body, size):
    """`body` as JSON padded with spaces to exactly `size` bytes (still valid JSON)."""
    text = json.dumps(body).encode()
    return text + b" " * (size - len(text))


def test_bodies_over_the_limit_are_413_problems_with_or_without_a_content_length(app, make_app, config, make_user):
    client = _app_with(make_app, config, MAX_CONTENT_LENGTH=LIMIT).test_client()
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    user_id, _ = make_user(admin=True)
    with app.app_context():
        _, token = auth.issue_token(db.session.get(User, user_id), "all", ["*"])
        db.session.commit()
    big = _padded({"name": "x"}, LIMIT + 1)
    checked = 0
    for method, path, operation in _operations(_spec(client)):
        if method == "get":
            continue
        url = _fill(path, {name: 1 for name in _path_parameters(path)})
        headers = {"Content-Type": "application/json"}
        if operation.get("security") != []:
            headers["Authorization"] = f"Bearer {token}"
        # Whether or not the operation reads a body: a client may not send one this large.
        with_length = client.open(url, method=method.upper(), data=big, headers=headers)
        chunked = client.open(url, method=method.upper(), input_stream=io.BytesIO(big),
                              headers={**headers, "Transfer-Encoding": "chunked"},
                              environ_overrides={"wsgi.input_terminated": True})
        for response in (with_length, chunked):
            body = assert_problem(response, 413, "payload-too-large")
            assert str(LIMIT) in body["detail"]
        checked += 1
    assert checked >= 25
    # At the limit exactly, the body is read whole: the (wrong) credentials are what is refused.
    exact = _padded({"email": "a@example.com", "password": "wrong"}, LIMIT)
    assert_problem(client.post("/api/auth/token", data=exact, headers={"Content-Type": "application/json"}), 401)
    assert_problem(client.post("/api/auth/token", input_stream=io.BytesIO(exact),
                               headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                               environ_overrides={"wsgi.input_terminated": True}), 401)


def test_a_real_server_answers_413_to_a_chunked_body_over_the_limit(app, config, tmp_path):
    """Through gunicorn (as `runner up` serves), over a socket: a chunked body has no Content-Length."""
    from perf.serving import start_gunicorn, stop

    env = {**worker_env(config), "RUNNER_MAX_CONTENT_LENGTH": str(LIMIT), "RUNNER_LOG_FORMAT": "text"}
    process, port, _ = start_gunicorn("wsgi:app", env, tmp_path / "gunicorn.log", cwd=ROOT)
    try:
        for size, status in ((LIMIT + 1, 413), (4 * LIMIT, 413), (LIMIT, 401)):
            body = _padded({"email": "a@example.com", "password": "wrong"}, size)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.putrequest("POST", "/api/auth/token")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), 8192):
                chunk = body[start:start + 8192]
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            answer = json.loads(response.read())
            conn.close()
            assert (response.status, response.getheader("Content-Type"), answer["status"]) == (
                status, "application/problem+json", status), answer
    finally:
        stop(process)


# --- header and line injection --------------------------------------------------------------------


def test_text_from_users_and_agents_forges_no_trailer_header_alert_line_or_log_line(app, scenario):
    s = scenario
    branch = f"runner/run-{s.run_id}"
    # The pushed commit: the title is one line, and Runner-Run is its only trailer, for every reader.
    message = git(s.origin, "log", "-1", "--format=%B", branch)
    assert git(s.origin, "log", "-1", "--format=%(trailers)", branch).strip() == f"Runner-Run: {s.run_id}"
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message.encode(), capture_output=True, check=True)
    assert parsed.stdout.decode() == f"Runner-Run: {s.run_id}\n"
    subject = git(s.origin, "log", "-1", "--format=%s", branch)
    assert subject.rstrip("\n") == " ".join(TITLE.split()) and "\r" not in subject

    # The pushes: APNs' headers are Runner's own, the alert one line.
    pushes = [push for push in s.apns.to(DEVICE) if push.payload["runId"] == s.run_id]
    assert len(pushes) == 1 and s.apns.refusals == []
    push = pushes[0]
    assert push.headers["apns-topic"] == TOPIC and push.headers["apns-collapse-id"] == f"run-{s.run_id}"
    assert not any(name.lower().startswith("x-") for name in push.headers), push.headers
    alert = push.payload["aps"]["alert"]
    assert alert["body"] == " ".join(TITLE.split()), alert
    assert set(push.payload) == {"aps", "runId", "projectId", "runStatus"}

    # Every response header the scenario received is one line, and Runner's.
    for record in s.recorder.responses:
        for name, value in record["headers"]:
            assert "\r" not in value and "\n" not in value, (record["request"], name, value)
            assert name.lower() != "x-injected", record["request"]
    # A request id that would end its header line is replaced, not echoed.
    forged = s.user.get("/api/auth/me", environ_overrides={"HTTP_X_REQUEST_ID": "abc\r\nX-Injected: yes"})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])

    # Every log record of the scenario is one line in both log formats, whatever it quotes.
    from runner.logs import JsonFormatter, _TextFormatter

    formatters = (JsonFormatter(), _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    forging = logging.LogRecord("runner.test", logging.WARNING, __file__, 1, "run %s: %s",
                                (s.run_id, TITLE + "\n2026-01-01 ERROR forged: x"), None)
    records = [*s.log_records(), forging]
    for record in records:
        if record.exc_info:
            continue
        for formatter in formatters:
            line = formatter.format(record)
            assert "\n" not in line and "\r" not in line, line


def test_an_apns_topic_that_is_no_bundle_id_is_never_sent_as_a_header(app, admin_api):
    """apns.topic becomes the apns-topic header: a value with a line break (or anything but a
    bundle ID) leaves APNs unconfigured, with the reason, instead of failing every push as
    "unreachable" and retrying it."""
    from runner import notifications

    private_key, _ = signing_key()
    settings = {"apns.keyId": KEY_ID, "apns.teamId": TEAM_ID, "apns.privateKey": private_key}
    for topic, usable in ((f"{TOPIC}\r\nx-injected: yes", False), (f"{TOPIC} x", False), (f"{TOPIC}.voip", True)):
        assert admin_api.put(PARAMS, json={**settings, "apns.topic": topic}).status_code == 200
        with app.app_context():
            config, why_not = notifications.readiness()
        if usable:
            assert config.topic == topic, why_not
        else:
            assert config is None and "apns.topic must be the app's bundle ID" in why_not


def test_text_no_database_can_store_is_a_422_naming_the_field_not_a_500(app, make_app, config, make_user):
    """NUL (PostgreSQL refuses it) and unpaired surrogates (UTF-8 cannot encode them) in any string of
    any body or query, on every operation that takes one."""
    client = _app_with(make_app, config, RATELIMIT_ENABLED=False).test_client()
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    user_id, _ = make_user(admin=True)
    with app.app_context():
        _, token = auth.issue_token(db.session.get(User, user_id), "all", ["*"])
        db.session.commit()
    api = ApiClient(client, token)
    spec = _spec(client)
    checked = 0
    for method, path, operation in _operations(spec):
        url = _fill(path, {name: 1 for name in _path_parameters(path)})
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and parameter["schema"].get("type") == "string":
                response = api.open(method.upper(), url, query_string={parameter["name"]: "a\x00b"})
                assert parameter["name"] in assert_problem(response, 422)["errors"], (method, path)
                checked += 1
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if not content:
            continue
        schema = _resolve(spec, content["schema"])
        for name, prop in schema.get("properties", {}).items():
            prop = _resolve(spec, prop)
            of_strings = prop.get("type") == "array" and _resolve(spec, prop["items"]).get("type") == "string"
            if prop.get("type") != "string" and not of_strings:
                continue
            for bad in ("a\x00b", "a\ud800b"):
                value = [bad] if prop.get("type") == "array" else bad
                raw = json.dumps({**_sample(spec, schema), name: value}).encode()
                response = api.open(method.upper(), url, data=raw, headers={"Content-Type": "application/json"})
                body = assert_problem(response, 422)
                assert body["errors"].get(name), (method, path, name, body)
                checked += 1
    assert checked >= 40


# An agent whose output holds what no database stores: a raw NUL (a `cat` of a binary file) on stdout
# and stderr, and in JSON escapes a NUL and a lone surrogate.
BINARY_AGENT = r"""
import json, sys
sys.stdout.write("before\x00after\n")
sys.stdout.write(json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": "nul \u0000 half \ud800"}]}}) + "\n")
sys.stderr.write("stderr\x00too\n")
"""


@pytest.mark.parametrize("agent", ["command", "claude-code"])
def test_agent_output_no_database_can_store_is_kept_readable_and_the_run_completes(
    agent, app, admin_api, user_api, tmp_path, run_jobs
):
    script = tmp_path / "binary-agent"
    script.write_text(f"#!{sys.executable}\n{BINARY_AGENT}")
    script.chmod(0o755)
    command = [str(script), "-p", "{prompt}"] if agent == "claude-code" else [str(script), "{prompt}"]
    assert admin_api.put(f"/api/settings/providers/{agent}", json={"enabled": True, "command": command}).status_code == 200
    project = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": origin_url(tmp_path / "origin")})
    run_jobs()
    draft = {"projectId": project.get_json()["id"], "title": "t", "prompt": "print", "selectedAgent": agent}
    run_id = user_api.post(RUNS, json={**draft, **({"selectedModel": "sonnet"} if agent == "claude-code" else {})}).get_json()["id"]
    assert user_api.post(f"{RUNS}/{run_id}/start").status_code == 202
    run_jobs()
    run = user_api.get(f"{RUNS}/{run_id}").get_json()
    messages = [event["message"] for event in _events(user_api, run_id)]
    assert run["status"] == "completed", (run, messages)
    assert "before\ufffdafter" in messages and "stderr\ufffdtoo" in messages
    if agent == "claude-code":
        assert "nul \ufffd half \ufffd" in messages


def _resolve(spec, node):
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _sample(spec, schema):
    """A body with every required member of `schema` set to a plausible value."""
    values = {"string": "x", "integer": 1, "boolean": False, "array": []}
    body = {}
    for name in schema.get("required", []):
        prop = _resolve(spec, schema["properties"][name])
        body[name] = prop["enum"][0] if "enum" in prop else values.get(prop.get("type"), "x")
    return body
