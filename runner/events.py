"""Agent events: recording them, and waking up whoever streams them.

The database is the truth; Redis pub/sub only says "run N has new events". An event is staged in
the session with `add` and the wake-up is published after the session commits, so a listener that
wakes always finds the rows, and a lost publish delays an event but never loses it.
"""
import json
import logging
import time
import uuid

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


# --- streaming (SSE) ---------------------------------------------------------------------------

PING_SECONDS = 15
FALLBACK_POLL_SECONDS = 5
STREAM_LIMIT_KEY = "runner:streams:{user_id}"
# A stream that has not refreshed its slot for this long is taken as gone (its process died).
STREAM_SLOT_SECONDS = 60


def frame(event_id=None, event=None, data=None, comment=None):
    """One SSE frame, exactly as the contract shows it."""
    if comment is not None:
        return f":{comment}\n\n"
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


class StreamSlots:
    """At most N concurrent streams per user, counted in Redis across processes and machines.

    Each stream holds a member of a sorted set scored by its last heartbeat; slots of streams whose
    process died expire after STREAM_SLOT_SECONDS instead of leaking forever.
    """

    def __init__(self, connection, user_id, limit):
        self.connection, self.limit = connection, limit
        self.key = STREAM_LIMIT_KEY.format(user_id=user_id)
        self.member = uuid.uuid4().hex

    def acquire(self):
        now = time.time()
        pipe = self.connection.pipeline()
        pipe.zremrangebyscore(self.key, "-inf", now - STREAM_SLOT_SECONDS)
        pipe.zadd(self.key, {self.member: now})
        pipe.zrank(self.key, self.member)
        pipe.expire(self.key, STREAM_SLOT_SECONDS * 2)
        _, _, rank, _ = pipe.execute()
        # Ordered by start time: the first `limit` members hold the slots.
        if rank is None or rank >= self.limit:
            self.release()
            return False
        return True

    def heartbeat(self):
        self.connection.zadd(self.key, {self.member: time.time()}, xx=True)
        self.connection.expire(self.key, STREAM_SLOT_SECONDS * 2)

    def release(self):
        self.connection.zrem(self.key, self.member)


def stream(run_id, last_event_id, serialize, slots, terminal_statuses, ping_seconds=PING_SECONDS):
    """Yield the SSE frames of run `run_id` after `last_event_id`: stored events first, then new
    ones as they are committed, then `end` once the run is terminal and everything was sent.

    `serialize(event)` gives the JSON body of an event. The database session is released before
    every wait, so an open stream holds no pooled connection.
    """
    from runner.models import Run

    connection = redis_client.connection
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel(run_id))
    try:
        yield "retry: 3000\n\n"
        last = last_event_id or 0
        last_ping = time.monotonic()
        while True:
            # Subscribed before reading: an event committed meanwhile is either read now or wakes us.
            batch = list(
                db.session.scalars(
                    db.select(AgentEvent)
                    .where(AgentEvent.run_id == run_id, AgentEvent.id > last)
                    .order_by(AgentEvent.id)
                    .limit(500)
                )
            )
            status = db.session.scalar(db.select(Run.status).where(Run.id == run_id))
            frames = [frame(event.id, "agent_event", serialize(event)) for event in batch]
            db.session.remove()
            for text in frames:
                yield text
            if batch:
                last = batch[-1].id
                if len(batch) == 500:
                    continue  # more stored events to replay before waiting
            if status in terminal_statuses and not batch:
                yield frame(event="end", data={"runId": run_id, "status": status})
                return
            if status in terminal_statuses:
                continue  # drain what arrived with the final status, then end
            # A wake-up, or at the latest a fallback read: a lost publish delays, never loses.
            message = pubsub.get_message(timeout=FALLBACK_POLL_SECONDS)
            while message is not None:  # several wake-ups collapse into one read
                message = pubsub.get_message(timeout=0)
            if time.monotonic() - last_ping >= ping_seconds:
                last_ping = time.monotonic()
                slots.heartbeat()
                yield frame(comment="ping")
    finally:
        pubsub.close()
        slots.release()
