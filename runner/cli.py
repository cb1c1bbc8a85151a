"""The `runner` command: up, worker, seed, users, tokens — plus Flask-Migrate's `db`.

Every command reads the same RUNNER_* environment as the server.
"""
import sys

import click
from flask.cli import FlaskGroup, with_appcontext

from runner import create_app


def _make_app():
    return create_app()


@click.group(cls=FlaskGroup, create_app=_make_app, add_default_commands=False, load_dotenv=False)
def main():
    """Runner: a self-hosted run controller for coding agents."""


@main.command("seed")
@with_appcontext
def seed_command():
    """Add the default agent providers that are missing."""
    from runner import providers

    added = providers.seed()
    click.echo(f"providers added: {', '.join(added)}" if added else "providers: nothing to add")


@main.group("users")
def users_group():
    """Manage users."""


@users_group.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--name", default="", help="Display name.")
@click.option("--password", help="Prompted for (hidden, twice) when not given.")
@with_appcontext
def users_create(email, admin, name, password):
    """Create a user."""
    from runner import auth
    from runner.extensions import db
    from runner.models import User

    email = auth.normalize_email(email)
    # Checked before the password prompt, so nobody types a password twice for nothing.
    if "@" not in email.strip("@") or len(email) > 254:
        raise click.ClickException(f"{email!r} is not an email address")
    if db.session.scalar(db.select(User).where(User.email == email)):
        raise click.ClickException(f"a user {email} already exists")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")
    user = auth.create_user(email, password, name=name, is_admin=admin)
    db.session.commit()
    click.echo(f"user {user.id} {user.email}{' (admin)' if admin else ''} created")


@main.group("tokens")
def tokens_group():
    """Manage personal access tokens."""


@tokens_group.command("create")
@click.argument("email")
@click.option(
    "--abilities",
    default=None,
    help="Comma-separated abilities or patterns (default: the mobile set). Any ability may be given here.",
)
@click.option("--name", default="cli", help="Token name.")
@click.option("--expires-in", type=int, default=None, help="Lifetime in seconds (default: no expiry).")
@with_appcontext
def tokens_create(email, abilities, name, expires_in):
    """Print a new token for EMAIL (for scripts and CI)."""
    from runner import auth, policies
    from runner.extensions import db
    from runner.models import User

    user = db.session.scalar(db.select(User).where(User.email == auth.normalize_email(email)))
    if user is None:
        raise click.ClickException(f"no user {email}")
    patterns = [a.strip() for a in abilities.split(",") if a.strip()] if abilities else list(policies.DEFAULT_MOBILE)
    unknown = [p for p in patterns if not policies.is_valid_pattern(p)]
    if unknown:
        raise click.ClickException(f"unknown abilities: {', '.join(unknown)}")
    if not user.is_admin and any(
        policies.matches(p, a) for p in patterns for a in policies.ADMIN_ONLY
    ):
        raise click.ClickException(f"{', '.join(policies.ADMIN_ONLY)} needs an admin user")
    _, plaintext = auth.issue_token(user, name, patterns, ttl_seconds=expires_in)
    db.session.commit()
    click.echo(plaintext)


@main.command("worker")
@click.option("--queues", default=None, help="Comma-separated queue names (default: all of Runner's).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker_command(queues, burst):
    """Run an RQ worker; jobs run inside this app's context."""
    from runner import queue

    names = [q.strip() for q in (queues or "").split(",") if q.strip()] or list(queue.QUEUES)
    queue.make_worker(names).work(burst=burst, with_scheduler=True)


@main.command("reap")
@with_appcontext
def reap_command():
    """Fail runs whose worker is gone (also done every minute by `runner up`)."""
    from runner import runs

    lost = runs.reap_lost_runs()
    click.echo(f"failed lost runs: {', '.join(map(str, lost))}" if lost else "no lost runs")


@main.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="RQ worker processes.")
@click.option("--http-workers", default=2, show_default=True, type=int, help="gunicorn (gevent) processes (each with its own event hub).")
def up_command(host, port, workers, http_workers):
    """Migrate, seed, start Redis (embedded unless RUNNER_REDIS_URL is set), workers and the server."""
    from runner.supervisor import Supervisor

    try:
        sys.exit(Supervisor(host, port, workers, http_workers).run())
    except RuntimeError as exc:  # the embedded Redis could not start: a message, not a traceback
        raise click.ClickException(str(exc)) from exc

