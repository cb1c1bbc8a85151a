"""Runner: a self-hosted run controller for coding agents. `create_app` builds the Flask app."""
import io
import os
import secrets
from pathlib import Path

import argon2.profiles
from flask import Flask, request

from runner.config import Config

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def create_app(config=None):
    """Build the app. `config` is a Config instance (or class); by default read from RUNNER_* env."""
    app = Flask("runner")
    if isinstance(config, type):
        config = config()
    app.config.from_object(config or Config())
    app.json.sort_keys = False
    _resolve_paths_and_secrets(app)

    from runner import auth, events, idempotency, logs, metrics, notifications
    from runner.api import Api
    from runner.extensions import db, limiter, migrate, redis_client

    db.init_app(app)
    events.init_app(app)
    notifications.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    redis_client.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config["RATELIMIT_DEFAULTS"] = app.config["RATELIMIT_DEFAULT"]

    # Order matters: the request id and timer first (every answer has them), then the rate limit
    # (keyed by the token's user, or the address when there is no valid token, so guessing tokens
    # is limited too), then authentication, then the body type, then the idempotency claim.
    logs.init_app(app)
    metrics.init_app(app)
    # Flask-Limiter is one object per process and keeps the default limits of the first app it
    # was given: forget them, so this app's RATELIMIT_DEFAULT counts (as its storage already does).
    limiter.limit_manager.set_default_limits([])
    limiter.init_app(app)
    app.before_request(auth.guard)
    app.before_request(_require_json_body)
    app.before_request(idempotency.before_request)
    app.after_request(idempotency.after_request)

    api = Api(app)
    from blueprints import register_blueprints

    register_blueprints(api)
    limiter.exempt(app.blueprints["api-docs"])
    from blueprints import console

    console.init_app(app)  # the web console at /console/: plain Flask, outside the API document
    app.teardown_appcontext(_close_session)
    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    return app


def _close_session(exc):
    from runner.extensions import db

    db.session.remove()


def _require_json_body():
    """413 for a body over MAX_CONTENT_LENGTH, whether or not the view reads it; 415 for a body that
    is not JSON; bodiless POSTs (actions like /start) need no Content-Type."""
    if request.endpoint is None:
        return None
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "")
    _limit_body(chunked)
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    has_body = (request.content_length or 0) > 0 or chunked
    if has_body and not request.is_json:
        from runner.errors import problem

        return problem(
            415,
            detail=f"Send the body as application/json (got {request.mimetype or 'no Content-Type'}).",
        )
    return None


def _limit_body(chunked):
    """Raise 413 when the body is larger than MAX_CONTENT_LENGTH.

    A Content-Length says so at once. A chunked body (no Content-Length) is read here, up to one
    byte past the limit: Werkzeug would stop reading at the limit without a word and hand the view a
    truncated body. What was read is put back as the body the view reads.
    """
    from werkzeug.exceptions import RequestEntityTooLarge

    limit = request.max_content_length
    if not limit:
        return
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    if not chunked or not request.environ.get("wsgi.input_terminated"):
        return  # without the server's word that the stream ends, Werkzeug reads no body at all
    stream, body = request.environ["wsgi.input"], bytearray()
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(bytes(body))


def _resolve_paths_and_secrets(app):
    data_dir = Path(app.config["DATA_DIR"]).resolve()
    app.config["DATA_DIR"] = str(data_dir)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        data_dir.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{data_dir / 'runner.db'}"
    if not app.config.get("REDIS_URL"):
        from runner.embedded_redis import running_url

        # Unset: the embedded Redis of a `runner up` on this data directory, if one is running.
        app.config["REDIS_URL"] = running_url(data_dir) or "redis://127.0.0.1:6379/0"
    profile = app.config["PASSWORD_HASH_PROFILE"]
    if not profile.isupper() or not hasattr(argon2.profiles, profile):
        raise RuntimeError(f"RUNNER_PASSWORD_HASH_PROFILE={profile!r} is not an argon2 profile")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _stored_secret_key(data_dir)


def _stored_secret_key(data_dir):
    """A random key made once and kept in DATA_DIR/secret_key, readable by the owner only."""
    path = data_dir / "secret_key"
    if not path.exists():
        # Written aside then linked into place: processes starting together agree on one key.
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return path.read_text().strip()
