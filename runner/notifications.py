"""Push notifications of runs: which status changes are announced, when the job is queued, what the
alert says, and whether APNs is set up to send it.

`run_status_changed` is called by `runner.events.status_changed`, inside the transaction that
changes a run's status. It only stages the announcement in the session (like runner.events stages
its wake-ups): the job is queued after the session commits, so a change that rolls back announces
nothing, and the queueing is guarded, so Redis trouble costs a push, never the run. The pushing
itself is `jobs.notifications`.
"""
import logging
import re
import threading
from urllib.parse import urlsplit

import sqlalchemy as sa

from runner import settings
from runner.apns import ApnsConfig
from runner.extensions import db, redis_client
from runner.models import Run

log = logging.getLogger(__name__)

HEADLINES = {"completed": "Ready for review", "failed": "Run failed", "cancelled": "Run cancelled"}
# A push is news for a day; after that APNs may drop it rather than wake the phone with old news.
EXPIRATION_SECONDS = 24 * 60 * 60
# How long "this status change was announced" is remembered, against announcing it twice.
ANNOUNCED_TTL_SECONDS = 7 * 24 * 60 * 60
_STAGED = "runner_run_announcements"
_listening = threading.Lock()
_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def announces(status, detail=None):
    """Whether a run reaching `status` is news for its owner's phone."""
    if status in ("completed", "failed"):
        return True
    # The owner's own cancel needs no push: they did it. A cancel the server made (a time limit)
    # comes with a detail saying why, and is news.
    return status == "cancelled" and bool(detail)


def run_status_changed(run_id, status, detail=None):
    """Stage the announcement of run `run_id` reaching `status`; it is queued once committed."""
    if not announces(status, detail):
        return
    # The attempt tells a retried run's second failure from its first (each is announced once).
    attempt = db.session.scalar(db.select(Run.attempt).where(Run.id == run_id))
    db.session.info.setdefault(_STAGED, {})[(run_id, attempt, status)] = True


def announce(run_id, attempt, status):
    """Queue the push job of one status change, once: the same change staged twice (or queued
    again after a crash) is refused by the Redis marker. Returns the job id, or None if it was
    already announced."""
    from jobs.notifications import notify_run
    from runner import queue

    key = f"runner:run-announced:{run_id}-{attempt}-{status}"
    if not redis_client.connection.set(key, "1", nx=True, ex=ANNOUNCED_TTL_SECONDS):
        return None
    return queue.enqueue(notify_run, run_id, status, job_id=f"notify-{run_id}-{attempt}-{status}")


def _announce_after_commit(session):
    staged = session.info.pop(_STAGED, None)
    for run_id, attempt, status in staged or ():
        try:
            announce(run_id, attempt, status)
        except Exception as exc:  # the run's change is committed; a lost push must not undo it
            log.warning("run %s: could not queue the %s push: %s", run_id, status, type(exc).__name__)


def _forget_after_rollback(session, previous_transaction):
    session.info.pop(_STAGED, None)


def init_app(app):
    # The listeners live on the session class every app shares: registered once.
    with _listening:
        for name, listener in (("after_commit", _announce_after_commit), ("after_soft_rollback", _forget_after_rollback)):
            if not sa.event.contains(db.session, name, listener):
                sa.event.listen(db.session, name, listener)


# --- what is sent, and whether it can be ------------------------------------------------------


def readiness():
    """`(ApnsConfig, None)` when pushes can be sent, else `(None, why not)`."""
    if not settings.get("notifications.enabled"):
        return None, "notifications.enabled is off"
    values = {name: settings.get(f"apns.{name}") for name in ("keyId", "teamId", "topic", "privateKey")}
    missing = [f"apns.{name}" for name, value in values.items() if not value]
    if missing:
        return None, f"APNs is not configured: set {', '.join(missing)}"
    if not _TOPIC.fullmatch(values["topic"]):
        # It is sent as the apns-topic header: anything but a bundle ID (and its .voip-style
        # suffixes) would be refused by APNs, or be no header at all.
        return None, "apns.topic must be the app's bundle ID (letters, digits, '.', '-' and '_')"
    endpoint = settings.get("apns.endpoint") or None
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme != "https" or not parts.netloc:
            return None, "apns.endpoint must be an https:// URL (APNs speaks HTTP/2 over TLS only)"
    return (
        ApnsConfig(
            key_id=values["keyId"],
            team_id=values["teamId"],
            topic=values["topic"],
            private_key=values["privateKey"],
            endpoint=endpoint,
            ca_bundle=settings.get("apns.caBundle") or None,
        ),
        None,
    )


def _clip(text, limit):
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _one_line(text):
    # A title or detail with line breaks would add lines of its own to the alert ("…\nApproved").
    return " ".join(text.split())


def payload(run, project, status):
    """The push of `run` reaching `status`: a short alert, and `runId` for the app's deep link.
    One line each, clipped so that no title or detail can push it past APNs' 4 KB."""
    body = _one_line(run.title or "") or f"Run {run.id}"
    if status != "completed" and run.status_detail:
        body = f"{body} — {_one_line(run.status_detail)}"
    return {
        "aps": {
            "alert": {"title": _clip(f"{project.name}: {HEADLINES[status]}", 120), "body": _clip(body, 400)},
            "sound": "default",
            "thread-id": f"run-{run.id}",
        },
        "runId": run.id,
        "projectId": project.id,
        "runStatus": status,
    }


def collapse_id(run_id):
    """Pushes of one run replace each other on the phone: its latest news is what matters."""
    return f"run-{run_id}"
