"""Agent events: recording them, and waking up whoever streams them.

The database is the truth; Redis pub/sub only says "run N has new events". An event is staged in
the session with `add` and the wake-up is published after the session commits, so a listener that
wakes always finds the rows, and a lost publish delays an event but never loses it.
"""
import logging

import sqlalchemy as sa

from runner.extensions import db, redis_client
from runner.models import AgentEvent

log = logging.getLogger(__name__)

SEVERITIES = ("debug", "info", "warning", "error")
EVENT_TYPES = (
    "status_changed",
    "agent_message",
    "tool_call",
    "tool_result",
    "file_created",
    "file_updated",
    "file_deleted",
    "command_started",
    "command_finished",
    "snapshot_created",
    "token_usage",
    "commit_created",
    "pushed",
    "review_submitted",
    "log",
    "error",
    "summary_ready",
)
_STAGED = "runner_event_runs"


def channel(run_id):
    return f"runner:run-events:{run_id}"


def add(run_id, event_type, message="", *, severity="info", path=None, data=None):
    """Stage an event of run `run_id` in the current session; it is published once committed."""
    event = AgentEvent(
        run_id=run_id, event_type=event_type, severity=severity, path=path, message=message, data=data or {}
    )
    db.session.add(event)
    db.session.info.setdefault(_STAGED, set()).add(run_id)
    return event


def status_changed(run_id, previous, current, detail=None):
    return add(
        run_id,
        "status_changed",
        f"{previous} → {current}" + (f": {detail}" if detail else ""),
        data={"from": previous, "to": current},
    )


def _publish_after_commit(session):
    run_ids = session.info.pop(_STAGED, None)
    if not run_ids:
        return
    try:
        pipe = redis_client.connection.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.publish(channel(run_id), "1")
        pipe.execute()
    except Exception as exc:  # the rows are committed; streams catch up at their next poll
        log.warning("could not publish event wake-ups: %s", type(exc).__name__)


def _forget_after_rollback(session, previous_transaction):
    session.info.pop(_STAGED, None)


def init_app(app):
    # Listeners live on the session class shared by every app: register them once.
    for name, listener in (("after_commit", _publish_after_commit), ("after_soft_rollback", _forget_after_rollback)):
        if not sa.event.contains(db.session, name, listener):
            sa.event.listen(db.session, name, listener)
