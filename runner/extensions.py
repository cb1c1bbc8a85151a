"""Extensions, created unbound here and bound to an app in `create_app`."""
import sqlite3

import redis
import sqlalchemy as sa
from flask import current_app, request
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Named constraints, so Alembic migrations can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate()


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite as PostgreSQL behaves, where it matters:
    - write-ahead log: readers (API workers, event streams, the run watcher) never block the
      writer, nor it them; in rollback-journal mode one open read made a commit wait, then fail.
      NORMAL sync is what WAL is made for: a commit stays atomic; a power cut may lose the last ones.
    - foreign keys enforced, ON DELETE actions included (SQLite's default is to ignore them): a
      deleted device leaves its notifications with no device, not with an id a new one may reuse.
      Migrations turn them off while they rebuild tables (runner/migrations/env.py)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class RedisClient:
    """One Redis connection pool per app, from REDIS_URL."""

    def init_app(self, app):
        app.extensions["runner-redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=5, health_check_interval=30
        )

    @property
    def connection(self) -> redis.Redis:
        return current_app.extensions["runner-redis"]


redis_client = RedisClient()


def rate_limit_key():
    """Per user once the bearer token is known, per client address before."""
    from runner.auth import current_token
    from runner.errors import UNAVAILABLE

    try:
        token = current_token(required=False)
    except UNAVAILABLE:
        # The database is out of reach: the request will be a 503 anyway. Raising here would
        # make Flask-Limiter take its own storage (Redis) for dead.
        token = None
    if token is not None:
        return f"user:{token.user_id}"
    return f"ip:{request.remote_addr}"


limiter = Limiter(key_func=rate_limit_key)


def limit(setting, scope=None):
    """Rate-limit a view by the limit string held in config key `setting`.

    Views naming the same `scope` share one budget per user (all settings writes count together);
    without it each view has its own.
    """
    value = lambda: current_app.config[setting]  # noqa: E731 - read per request, tests change it
    if scope:
        return limiter.shared_limit(value, scope=scope)
    return limiter.limit(value)

