"""Test fixtures: the app on a real database (SQLite and PostgreSQL), a real Redis, real users.

Every test that uses `app` runs once per database in RUNNER_TEST_DATABASES (default
"sqlite,postgresql"). Each backend gets a fresh database built by the Alembic migrations, once per
session; rows are deleted after each test and the Redis test database is flushed before each.

- RUNNER_TEST_POSTGRES_URL: a PostgreSQL server where a throwaway database may be created
  (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
- RUNNER_TEST_REDIS_URL: a Redis database the tests may flush (default redis://127.0.0.1:6379/15).
"""
import os
import uuid

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from runner import create_app
from runner.config import TestConfig

from helpers import PASSWORD, ApiClient

DATABASES = [
    name.strip() for name in os.environ.get("RUNNER_TEST_DATABASES", "sqlite,postgresql").split(",") if name.strip()
]
POSTGRES_URL = os.environ.get(
    "RUNNER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("RUNNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _libpq(url):
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request, tmp_path_factory):
    """A migrated, empty database of one backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'runner.db'}"
        cleanup = None
    elif request.param == "postgresql":
        name = f"runner_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

        def cleanup():
            with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    else:
        raise pytest.UsageError(f"unknown database backend {request.param!r} in RUNNER_TEST_DATABASES")

    app = create_app(_config(url, tmp_path_factory.mktemp("data")))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield url
    if cleanup:
        from runner.extensions import db

        with app.app_context():
            db.engine.dispose()
        cleanup()


def _config(database_url, data_dir):
    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = database_url
    config.REDIS_URL = REDIS_URL
    config.DATA_DIR = str(data_dir)
    return config


@pytest.fixture
def config(database_url, tmp_path):
    """The TestConfig the `app` fixture is built from; tests may change it before using `app`."""
    return _config(database_url, tmp_path / "data")


@pytest.fixture
def redis_conn():
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.close()


@pytest.fixture
def app(config, redis_conn):
    app = create_app(config)
    from runner import providers
    from runner.extensions import db

    with app.app_context():
        providers.seed()
    yield app
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
    _close(app)


def _close(app):
    """Close an app's database and Redis connections now, not whenever the garbage collector gets
    to them (an unclosed socket then warns in whichever test is running)."""
    from runner.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["runner-redis"].connection_pool.disconnect()


@pytest.fixture
def make_app():
    """`make_app(config)` -> another app on the same database and Redis, its connections closed at
    teardown (for tests that need settings the `app` fixture was not built with)."""
    apps = []

    def make(config):
        apps.append(create_app(config))
        return apps[-1]

    yield make
    for extra in apps:
        _close(extra)


@pytest.fixture
def run_jobs(app):
    """Run every queued job now, in this process, with a real RQ worker (burst mode)."""
    from runner import queue

    def run():
        with app.app_context():
            # with_scheduler: jobs scheduled for later (a run waiting for a slot) are queued once due.
            worker = queue.make_worker(list(queue.QUEUES), fork=False)
            try:
                worker.work(burst=True, with_scheduler=True)
            finally:
                if worker.scheduler is not None:  # RQ leaves its scheduler's own client open
                    worker.scheduler.connection.connection_pool.disconnect()

    return run


@pytest.fixture(autouse=True)
def _push_request_context():
    """Overrides pytest-flask's: each test-client request gets its own app context, as in production
    (a shared context would share `g` and the database session between requests)."""
    yield


@pytest.fixture
def make_user(app):
    from runner import auth
    from runner.extensions import db

    def make(email=None, *, admin=False, password=PASSWORD):
        with app.app_context():
            user = auth.create_user(email or f"{uuid.uuid4().hex[:8]}@example.com", password, is_admin=admin)
            db.session.commit()
            return user.id, user.email

    return make


@pytest.fixture
def login(client):
    """`login(email, **body)` -> ApiClient holding a token from POST /api/auth/token."""

    def do_login(email, password=PASSWORD, **body):
        response = client.post("/api/auth/token", json={"email": email, "password": password, **body})
        assert response.status_code == 201, response.get_json()
        return ApiClient(client, response.get_json()["token"])

    return do_login


@pytest.fixture
def user_api(make_user, login):
    """A regular user's client with the default mobile token."""
    _, email = make_user()
    api = login(email)
    api.email = email
    return api


@pytest.fixture
def admin_api(make_user, login):
    """An admin's client holding a token elevated to settings:write."""
    _, email = make_user(admin=True)
    api = login(email)
    response = api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    assert response.status_code == 201, response.get_json()
    elevated = ApiClient(api.client, response.get_json()["token"])
    elevated.email = email
    return elevated


@pytest.fixture
def anon(client):
    return ApiClient(client)
