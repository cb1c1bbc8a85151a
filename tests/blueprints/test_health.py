"""GET /api/health and /api/ready: public, never rate-limited, and honest about the database and Redis."""
import pytest

from helpers import ApiClient, assert_problem
from runner import create_app
from runner.extensions import db

# Nothing listens on port 1: connections are refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"
CLOSED_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/runner"


@pytest.fixture
def build_app(config):
    """`build_app(**overrides)` -> a test client of an app whose config has `overrides` applied.

    The `app` fixture cannot be used: it seeds the database, which these apps may not reach.
    """
    apps = []

    def build(**overrides):
        for name, value in overrides.items():
            setattr(config, name, value)
        app = create_app(config)
        apps.append(app)
        return ApiClient(app.test_client())

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()
            app.extensions["runner-redis"].close()


@pytest.fixture
def unreachable_database(config, tmp_path):
    """A database URL of the backend under test that cannot be opened."""
    if config.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'no-such-directory' / 'runner.db'}"
    return CLOSED_POSTGRES


def test_health_is_public(anon):
    response = anon.get("/api/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_health_ignores_a_bad_token(anon):
    # A load balancer may forward whatever Authorization header a client sent.
    response = anon.get("/api/health", headers={"Authorization": "Bearer 1|not-a-token"})
    assert response.status_code == 200


def test_ready_is_public_and_reports_its_checks(anon):
    response = anon.get("/api/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_ready_is_503_when_redis_is_unreachable(build_app):
    client = build_app(REDIS_URL=CLOSED_REDIS)
    body = assert_problem(client.get("/api/ready"), 503, "not-ready")
    assert body["checks"] == {"database": "ok", "redis": "unreachable"}
    assert body["title"] == "Not ready"
    assert "127.0.0.1" not in str(body)  # the reason goes to the log, not to the caller


def test_health_stays_up_when_redis_is_unreachable(build_app):
    client = build_app(REDIS_URL=CLOSED_REDIS)
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_is_503_when_the_database_is_unreachable(build_app, unreachable_database):
    client = build_app(SQLALCHEMY_DATABASE_URI=unreachable_database)
    response = client.get("/api/ready")
    body = assert_problem(response, 503, "not-ready")
    assert body["checks"] == {"database": "unreachable", "redis": "ok"}
    assert "postgres" not in response.get_data(as_text=True).lower()
    assert "sqlite" not in response.get_data(as_text=True).lower()
    assert client.get("/api/health").status_code == 200


def test_ready_reports_both_when_both_are_unreachable(build_app, unreachable_database):
    client = build_app(
        SQLALCHEMY_DATABASE_URI=unreachable_database, REDIS_URL=CLOSED_REDIS
    )
    body = assert_problem(client.get("/api/ready"), 503, "not-ready")
    assert body["checks"] == {"database": "unreachable", "redis": "unreachable"}


def test_ready_keeps_answering_503_while_the_database_is_down(build_app, unreachable_database):
    client = build_app(SQLALCHEMY_DATABASE_URI=unreachable_database)
    # Each probe answers the same problem, not a 500 from a session left in a failed state.
    for _ in range(3):
        assert_problem(client.get("/api/ready"), 503, "not-ready")


def test_health_endpoints_are_not_rate_limited(anon, app):
    assert app.config["RATELIMIT_DEFAULT"] == "60/minute"
    for n in range(70):
        response = anon.get("/api/health")
        assert response.status_code == 200, n
        assert "X-RateLimit-Limit" not in response.headers
    for n in range(70):
        assert anon.get("/api/ready").status_code == 200, n


def test_other_public_endpoints_are_rate_limited(anon):
    # The counterpart of the test above: the same client is limited elsewhere, so the exemption
    # is what keeps health checks answering.
    body = {"email": "nobody@example.com", "password": "wrong"}
    statuses = [anon.post("/api/auth/token", json=body).status_code for _ in range(61)]
    assert statuses[:60] == [401] * 60
    assert_problem(anon.post("/api/auth/token", json=body), 429, "rate-limited")
    assert anon.get("/api/health").status_code == 200


def test_the_rest_of_the_api_goes_on_without_redis_where_it_can(build_app):
    client = build_app(REDIS_URL=CLOSED_REDIS)
    # Rate limits fall back to memory, so what needs no Redis goes on: a bad token is a 401, not
    # a 500 or a 503. What needs Redis answering 503 is in tests/test_faults.py.
    for path in ("/api/auth/me", "/api/settings/providers"):
        assert_problem(client.get(path, headers={"Authorization": "Bearer 1|whatever"}), 401)


def test_the_rest_of_the_api_answers_503_when_the_database_is_down(build_app, unreachable_database, redis_conn):
    client = build_app(SQLALCHEMY_DATABASE_URI=unreachable_database)
    response = client.post("/api/auth/token", json={"email": "a@example.com", "password": "pw"})
    assert_problem(response, 503, "dependency-unavailable")
    assert "sqlite" not in response.get_data(as_text=True).lower()
