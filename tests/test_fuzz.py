"""Property tests: schemathesis generates requests for every operation of /api/openapi.json.

The requests go through WSGI to the app itself (no network), signed in as an admin whose token holds
every ability, so generation reaches the views rather than stopping at 401/403. Every answer must be
what the document promises (status, media type, body schema), never a 5xx, and every 4xx must be a
problem+json body.

Twice: against an empty database, where every id names nothing (what a stranger's requests meet),
and against real resources — a cloned project, runs with their events, files, commands, snapshots,
review and commit, a device — so that the 2xx answers of every operation are held to the document
too.
"""
import hashlib
import shutil
import sys
import tempfile
import uuid
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks

from gitrepo import make_repo
from runner import config as runner_config
from runner import create_app
from security_helpers import write_fake_claude

PROBLEM = "application/problem+json"
# Random cases per operation, on top of the deterministic coverage phase (boundary values, missing
# and wrong-typed members: most of the cases). Small, so the module stays around a minute per
# database; most of that is argon2 on the password endpoints and git on the seeded resources.
MAX_EXAMPLES = 10

_SETTINGS = {
    # The same cases on every run, so a failure here is reproducible rather than flaky.
    "seed": 20261101,
    # Strings holding NUL are refused with a 422 naming the member (no database can store them:
    # tests/test_security.py), which the document's plain `string` cannot say.
    "generation": {"allow-x00": False},
    "checks": {
        # A schema-valid request may still get 400 for a `cursor` the server never issued: a
        # signature is nothing a schema can describe. (Malformed JSON, the only other 400, is
        # never a positive case.)
        "positive_data_acceptance": {"expected-statuses": ["2xx", 400, 401, 403, 404, 409]},
    },
    "operations": [
        {
            # The password must be the caller's own, which no schema can say either: a
            # schema-valid body with another password is rightly a 422 (errors.password).
            "include-path": "/api/auth/elevate",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 422]}},
        },
        {
            # Whether a string is a repository URL Runner accepts (scheme, no embedded
            # credentials, local paths only when allowed) is beyond what the schema says.
            "include-name": "POST /api/projects",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 422]}},
        },
        {
            # A draft names a ready project the caller can see, an enabled provider and a model
            # it lists: facts of the database, not of the schema.
            "include-name": "POST /api/runs",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 422]}},
        },
        {
            # git's branch-name rules (`git check-ref-format`) go beyond what a pattern can say.
            "include-name": "PUT /api/projects/{project_id}",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 422]}},
        },
        {
            # `against` names a snapshot of the same project: a fact of the database.
            "include-path": "/api/snapshots/{snapshot_id}/compare",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 422]}},
        },
        {
            # An enabled provider needs a command: a rule across members (and the stored row).
            "include-path": "/api/settings/providers/{key}",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 404, 422]}},
        },
    ],
}


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture
def config(config, database_url, fuzz_root):
    # The fuzzer sends far more than 60 requests a minute; with limits on, most answers would be 429.
    config.RATELIMIT_ENABLED = False
    # One data directory per database for the whole module: git worktrees record their absolute
    # paths, so the seeded resources' files must be put back where they were made.
    config.DATA_DIR = str(fuzz_root / "data" / hashlib.sha256(database_url.encode()).hexdigest()[:12])
    return config


@pytest.fixture
def issue_admin_token(app):
    """Issues a fresh `*` token of one admin; a fresh one per request because the fuzzer may log out."""
    from runner import auth
    from runner.extensions import db

    with app.app_context():
        admin_id = auth.create_user("fuzz-admin@example.com", "fuzz-password", is_admin=True).id
        db.session.commit()
    return _token_issuer(app, admin_id)


def _token_issuer(app, user_id):
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    def issue():
        with app.app_context():
            _, token = auth.issue_token(db.session.get(User, user_id), "fuzz", ["*"])
            db.session.commit()
        return token

    return issue


class _AppOfTheRunningTest:
    """The WSGI app schemathesis talks to: it forwards to the `app` of the test being run.

    The schema is loaded at collection, before any test's app (and database) exists, and
    schemathesis sends follow-up probes of its own (e.g. without credentials) to the app the
    schema was loaded from: both must reach the app of the test at hand.
    """

    target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


_forward = _AppOfTheRunningTest()


def _load_schema(**settings_):
    """The app's own /api/openapi.json, read through WSGI, with `_SETTINGS` updated by `settings_`.

    The document does not depend on the database, so an app that never touches one serves it.
    """
    config = runner_config.TestConfig()
    config.SQLALCHEMY_DATABASE_URI = "sqlite://"
    config.REDIS_URL = "redis://127.0.0.1:6379/0"  # never connected to: the document needs no Redis
    config.DATA_DIR = tempfile.gettempdir()
    _forward.target = create_app(config)
    try:
        return schemathesis.openapi.from_wsgi(
            "/api/openapi.json", _forward, config=schemathesis.Config.from_dict({**_SETTINGS, **settings_})
        )
    finally:
        _forward.target = None


@pytest.fixture
def routed_app(app):
    _forward.target = app
    yield app
    _forward.target = None


def client_errors_are_problems(ctx, response, case):
    """Every 4xx answer is an RFC 7807 problem naming the request path."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM, f"{response.status_code} answered as {content_type!r}"
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["type"].startswith("https://docs.runner.dev/errors/"), body
    assert body["title"], body
    # The path as sent, compared decoded: "%2C" and "," name the same path to the app.
    sent_path = urlsplit(response.request.url).path
    assert unquote(body["instance"]) == unquote(sent_path), body
    return None


schema = _load_schema()
# Only positive cases on real resources: a negative one is refused by the schema before any row is
# read, which the empty database shows as well.
seeded_schema = _load_schema(generation={**_SETTINGS["generation"], "mode": "positive"})

# Named rather than left to schemathesis' defaults, so an upgrade cannot quietly drop one.
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,  # what the document forbids is refused
    st_checks.positive_data_acceptance,  # what it allows is accepted
    st_checks.missing_required_header,
    st_checks.unsupported_method,  # 405, with an Allow header
    st_checks.allow_header_conformance,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
    st_checks.ignored_auth,  # a protected operation answers 401 without a token
    client_errors_are_problems,
]

_HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # no replaying of stored failures: the seed alone decides the cases
    # The app is built once per operation and database, and shared by that operation's cases.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _unique_idempotency_key(case):
    # Generated keys repeat across cases with other bodies, which is rightly a 422 (tested in
    # test_idempotency); a valid key is made unique so each case is judged on its own.
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and key.strip() and len(key) <= 255:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


@schema.parametrize()
@_HYPOTHESIS
def test_every_operation_keeps_its_documented_promises(case, routed_app, issue_admin_token):
    _unique_idempotency_key(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {issue_admin_token()}"}, checks=CHECKS)


# --- on real resources -----------------------------------------------------------------------------
#
# The resources are made once per database through the API and the real worker, then kept — every
# row with its id, and the data directory — and put back before each operation, so that no
# operation meets what another one did (an archived project, a cancelled run, a logout).

_SEEDED = {}  # database url -> {"rows": {table: [row]}, "files": golden copy of DATA_DIR, "ids": {...}}
# Which run an action on runs is tried on (any other: the completed one).
_RUN_FOR_ACTION = {"start": "draft", "cancel": "draft", "retry": "failed"}
_AGENT = r"""
import pathlib, sys
pathlib.Path("notes.md").write_text(sys.argv[1] + "\n")
print("wrote notes.md", flush=True)
"""


def _seed(app, run_jobs, root):
    """A cloned and indexed project with its managed docs, a manual snapshot, a device, and three
    runs: completed (files, a command with output, snapshots, an approval and its commit), failed,
    draft — all of one admin. Returns their ids."""
    from runner import auth
    from runner.extensions import db

    with app.app_context():
        admin_id = auth.create_user("owner@example.com", "owner-password", is_admin=True).id
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {_token_issuer(app, admin_id)()}"}

    def call(method, path, status, json=None):
        response = client.open(path, method=method, json=json, headers=headers)
        assert response.status_code == status, (path, response.get_data(as_text=True))
        return response.get_json()

    origin = root / "origin"
    if not origin.exists():
        make_repo(origin, {
            "README.md": "# demo\n", "src/app.py": "import os\n\n\ndef main():\n    return os.getcwd()\n",
            "migrations/001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
        })
    agent = write_fake_claude(root / "fake-claude", "Wrote hello.txt.")
    call("PUT", "/api/settings/providers/claude-code", 200, {"enabled": True, "command": [str(agent), "-p", "{prompt}"]})
    call("PUT", "/api/settings/providers/command", 200, {"enabled": True, "command": [sys.executable, "-c", _AGENT, "{prompt}"]})
    project = call("POST", "/api/projects", 202, {"name": "demo", "repositoryUrl": origin.as_uri()})["id"]
    run_jobs()
    call("POST", f"/api/projects/{project}/docs/regenerate", 202)
    run_jobs()
    snapshot = call("POST", f"/api/projects/{project}/snapshots", 201, {"description": "before"})["id"]
    device = call("POST", "/api/devices", 201, {"token": "ab" * 32, "environment": "sandbox", "name": "phone"})["id"]

    runs = {}
    for name, agent_key, prompt in (("completed", "claude-code", "add hello"), ("failed", "claude-code", "fail now"),
                                    ("draft", "command", "later")):
        body = {"projectId": project, "title": name, "prompt": prompt, "selectedAgent": agent_key}
        runs[name] = call("POST", "/api/runs", 201, {**body, **({"selectedModel": "sonnet"} if agent_key == "claude-code" else {})})["id"]
        if name != "draft":
            call("POST", f"/api/runs/{runs[name]}/start", 202)
            run_jobs()
    completed = runs["completed"]
    assert call("GET", f"/api/runs/{completed}", 200)["status"] == "completed"
    assert call("GET", f"/api/runs/{runs['failed']}", 200)["status"] == "failed"
    call("POST", f"/api/runs/{completed}/approve", 200, {"notes": "fine", "commit": True})
    file_id = call("GET", f"/api/runs/{completed}/files", 200)["data"][0]["id"]
    command_id = call("GET", f"/api/runs/{completed}/commands", 200)["data"][0]["id"]
    output_url = call("GET", f"/api/runs/{completed}/commands/{command_id}", 200)["stdoutUrl"]
    return {
        "admin_id": admin_id, "project_id": project, "snapshot_id": snapshot, "device_id": device, "runs": runs,
        "file_id": file_id, "command_id": command_id, "token": output_url.rsplit("/", 1)[1], "key": "command",
    }


def _keep(app, root, database_url):
    from runner.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        rows = {table: [dict(row._mapping) for row in conn.execute(table.select())] for table in db.metadata.sorted_tables}
    files = root / "golden" / hashlib.sha256(database_url.encode()).hexdigest()[:12]
    shutil.rmtree(files, ignore_errors=True)
    shutil.copytree(app.config["DATA_DIR"], files, symlinks=True)
    return {"rows": rows, "files": files}


def _put_back(app, kept):
    """The kept rows, ids included (sequences already went past them), and the data directory."""
    from runner.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
        for table, rows in kept["rows"].items():
            if rows:
                conn.execute(table.insert(), rows)
    shutil.rmtree(app.config["DATA_DIR"], ignore_errors=True)
    shutil.copytree(kept["files"], app.config["DATA_DIR"], symlinks=True)


@pytest.fixture
def seeded(routed_app, run_jobs, database_url, fuzz_root):
    """The resources' ids, with the resources as they were made."""
    if database_url in _SEEDED:
        _put_back(routed_app, _SEEDED[database_url])
    else:
        ids = _seed(routed_app, run_jobs, fuzz_root)
        _SEEDED[database_url] = {**_keep(routed_app, fuzz_root, database_url), "ids": ids}
    return _SEEDED[database_url]["ids"]


@seeded_schema.parametrize()
@_HYPOTHESIS
def test_every_operation_keeps_its_documented_promises_on_real_resources(case, routed_app, seeded):
    _unique_idempotency_key(case)
    action = case.path.rsplit("/", 1)[1]
    for name in case.path_parameters or {}:
        if name == "run_id":
            case.path_parameters[name] = seeded["runs"][_RUN_FOR_ACTION.get(action, "completed")]
        elif name in seeded:
            case.path_parameters[name] = seeded[name]
    token = _token_issuer(routed_app, seeded["admin_id"])()
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
