"""Property tests: schemathesis generates requests for every operation of /api/openapi.json.

The requests go through WSGI to the app itself (no network), signed in as an admin whose token holds
every ability, so generation reaches the views rather than stopping at 401/403. Every answer must be
what the document promises (status, media type, body schema), never a 5xx, and every 4xx must be a
problem+json body.
"""
import tempfile
import uuid
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks

from runner import config as runner_config
from runner import create_app

PROBLEM = "application/problem+json"
# Random cases per operation, on top of the deterministic coverage phase (boundary values, missing
# and wrong-typed members: most of the cases). Small, so the module takes well under a minute for
# both databases; most of that is argon2 on the password endpoints.
MAX_EXAMPLES = 10

_SCHEMATHESIS_CONFIG = schemathesis.Config.from_dict(
    {
        # The same cases on every run, so a failure here is reproducible rather than flaky.
        "seed": 20261101,
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
        ],
    }
)


@pytest.fixture
def config(config):
    # The fuzzer sends far more than 60 requests a minute; with limits on, most answers would be 429.
    config.RATELIMIT_ENABLED = False
    return config


@pytest.fixture
def issue_admin_token(app):
    """Issues a fresh `*` token of one admin; a fresh one per request because the fuzzer may log out."""
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    with app.app_context():
        admin_id = auth.create_user("fuzz-admin@example.com", "fuzz-password", is_admin=True).id
        db.session.commit()

    def issue():
        with app.app_context():
            _, token = auth.issue_token(db.session.get(User, admin_id), "fuzz", ["*"])
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


def _load_schema():
    """The app's own /api/openapi.json, read through WSGI.

    The document does not depend on the database, so an app that never touches one serves it.
    """
    config = runner_config.TestConfig()
    config.SQLALCHEMY_DATABASE_URI = "sqlite://"
    config.REDIS_URL = "redis://127.0.0.1:6379/0"  # never connected to: the document needs no Redis
    config.DATA_DIR = tempfile.gettempdir()
    _forward.target = create_app(config)
    try:
        return schemathesis.openapi.from_wsgi("/api/openapi.json", _forward, config=_SCHEMATHESIS_CONFIG)
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


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # no replaying of stored failures: the seed alone decides the cases
    # The app is built once per operation and database, and shared by that operation's cases.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_keeps_its_documented_promises(case, routed_app, issue_admin_token):
    # Generated keys repeat across cases with other bodies, which is rightly a 422 (tested in
    # test_idempotency); a valid key is made unique so each case is judged on its own.
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and key.strip() and len(key) <= 255:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(headers={"Authorization": f"Bearer {issue_admin_token()}"}, checks=CHECKS)
