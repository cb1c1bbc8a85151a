"""Agent events: recording them, and waking up whoever streams them.

The database is the truth; Redis pub/sub only says "run N has new events". An event is staged in
the session with `add` and the wake-up is published after the session commits, so a listener that
wakes always finds the rows, and a lost publish delays an event but never loses it.
"""
import bisect
import json
import logging
import os
import threading
import time
import uuid

import redis
import sqlalchemy as sa
from flask import current_app

from runner.extensions import db, redis_client
from runner.models import AgentEvent, Run, utcnow

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
    _hold_run(run_id)
    event = AgentEvent(
        run_id=run_id, event_type=event_type, severity=severity, path=path, message=message, data=data or {}
    )
    db.session.add(event)
    return event


def add_many(run_id, items):
    """Insert a batch of events of run `run_id` now, in one multi-row INSERT (ids in list order);
    published once the session commits. `items` are dicts of `add`'s arguments (`event_type`,
    `message`, `severity`, `path`, `data`). Cheaper than `add` per event for chatty agents."""
    if not items:
        return
    _hold_run(run_id)
    now = utcnow()
    db.session.execute(
        AgentEvent.__table__.insert(),
        [
            {
                "run_id": run_id,
                "event_type": item["event_type"],
                "severity": item.get("severity") or "info",
                "path": item.get("path"),
                "message": item.get("message") or "",
                "data": item.get("data") or {},
                "created_at": now,
            }
            for item in items
        ],
    )


def _hold_run(run_id):
    """Order the run's event writers, once per transaction: streams read "ids after the last one
    sent", so a run's events must commit in id order. PostgreSQL hands out ids at INSERT and commits
    in any order, so writers first lock the run's row (held to commit); SQLite already serializes
    writers, ids included."""
    staged = db.session.info.setdefault(_STAGED, set())
    if run_id in staged:
        return
    staged.add(run_id)
    if db.session.get_bind().dialect.name != "sqlite":
        db.session.execute(sa.select(Run.id).where(Run.id == run_id).with_for_update())


def status_changed(run_id, previous, current, detail=None):
    """Stage the run's status_changed event; a status that needs the owner's attention (completed,
    failed) is announced to their devices once this commits (runner.notifications)."""
    from runner import notifications

    notifications.run_status_changed(run_id, current, detail)
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
    app.extensions["runner-event-hub"] = EventHub(app)
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


UNREAD = object()


class _Feed:
    """What one process has read of one run's events, kept for the streams it serves.

    Every event of the run with `floor < id <= last_id` is in `frames`, serialized once; a stream
    behind `floor` catches up from the database first.
    """

    def __init__(self, run_id, serialize):
        self.run_id, self.serialize = run_id, serialize
        self.ids, self.texts = [], []
        self.floor = self.last_id = None  # None until first read
        self.status = UNREAD  # then the run's status; None once the run is deleted
        self.version = 0  # bumped by every read that found something new
        self.streams = 0
        # Set, and replaced by a fresh one, whenever the feed changes: the streams' wake-up. (An
        # Event, not a Condition: gevent's is a cheap greenlet switch, and 200 streams wait on it.)
        self.changed = threading.Event()
        self.reading = threading.Lock()  # one read of a run at a time

    def frames_after(self, event_id):
        start = bisect.bisect_right(self.ids, event_id)
        return self.ids[-1] if start < len(self.ids) else event_id, self.texts[start:]


class EventHub:
    """One reader per run per process, fanning its events out to every stream of that run.

    A Redis pattern subscription wakes one listener thread per process; it reads the woken run's new
    events once and hands the frames to the run's streams, so a publish costs one query however many
    clients watch. Every FALLBACK_POLL_SECONDS it reads every watched run anyway: a lost publish
    delays an event, never loses it. The listener runs while some stream is open.
    """

    BUFFER = 2048  # frames kept per watched run; a stream further behind reads the database

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.feeds = {}
        self.listener = None
        self.pid = None
        # Set while Redis is away: open streams end (cleanly; the clients come back with
        # Last-Event-ID) rather than wait on wake-ups that cannot come.
        self.redis_lost = False

    def attach(self, run_id, serialize):
        with self.lock:
            if self.listener is None or self.pid != os.getpid():
                self.pid = os.getpid()
                self.listener = threading.Thread(target=self._listen, daemon=True, name="runner-event-hub")
                self.listener.start()
            feed = self.feeds.get(run_id)
            if feed is None:
                feed = self.feeds[run_id] = _Feed(run_id, serialize)
            feed.streams += 1
        return feed

    def detach(self, feed):
        with self.lock:
            feed.streams -= 1
            if feed.streams <= 0 and self.feeds.get(feed.run_id) is feed:
                del self.feeds[feed.run_id]

    def read(self, feed, connection):
        """Read the run's status, then its events after what the feed holds (in that order: once
        the status is terminal, every event committed with it is in this read). Core rows, not
        ORM objects, on `connection`, whose transaction is ended after (SQLite writers wait for
        readers)."""
        events_table = AgentEvent.__table__
        with feed.reading:
            try:
                status = connection.scalar(sa.select(Run.__table__.c.status).where(Run.__table__.c.id == feed.run_id))
                if feed.last_id is None:
                    newest = connection.scalar(
                        sa.select(sa.func.max(events_table.c.id)).where(events_table.c.run_id == feed.run_id)
                    )
                    with self.lock:
                        feed.floor = feed.last_id = newest or 0
                while True:
                    batch = connection.execute(
                        sa.select(events_table)
                        .where(events_table.c.run_id == feed.run_id, events_table.c.id > feed.last_id)
                        .order_by(events_table.c.id)
                        .limit(500)
                    ).all()
                    frames = [(row.id, frame(row.id, "agent_event", feed.serialize(row._mapping)).encode()) for row in batch]
                    final = len(batch) < 500
                    with self.lock:
                        # The status goes with the last page only: a terminal status must not
                        # reach a stream before the events committed ahead of it.
                        if frames or (final and status != feed.status):
                            feed.ids.extend(event_id for event_id, _ in frames)
                            feed.texts.extend(text for _, text in frames)
                            if frames:
                                feed.last_id = frames[-1][0]
                            if final:
                                feed.status = status
                            feed.version += 1
                            self._trim(feed)
                            changed, feed.changed = feed.changed, threading.Event()
                            changed.set()
                    if final:
                        return
            finally:
                connection.rollback()

    def _redis_lost(self):
        with self.lock:
            self.redis_lost = True
            for feed in self.feeds.values():
                changed, feed.changed = feed.changed, threading.Event()
                changed.set()

    def _trim(self, feed):
        excess = len(feed.ids) - self.BUFFER
        if excess > self.BUFFER // 4:  # trim in chunks: slicing is O(n)
            feed.floor = feed.ids[excess - 1]
            del feed.ids[:excess], feed.texts[:excess]

    def _listen(self):
        prefix = channel("")
        pubsub = None
        with self.app.app_context():
            engine = db.engine
        next_poll = 0.0
        while True:
            with self.lock:
                if not self.feeds or self.pid != os.getpid():
                    if self.listener is threading.current_thread():
                        self.listener = None
                    break
            try:
                if pubsub is None:
                    pubsub = self.app.extensions["runner-redis"].pubsub(ignore_subscribe_messages=True)
                    pubsub.psubscribe(prefix + "*")
                    self.redis_lost = False
                    next_poll = 0.0  # read everything once: wake-ups may have been missed meanwhile
                woken = set()
                timeout = max(0.0, next_poll - time.monotonic())
                message = pubsub.get_message(timeout=timeout) if timeout else None
                while message is not None:  # several wake-ups collapse into one read per run
                    name = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                    if name.startswith(prefix) and name[len(prefix):].isdigit():
                        woken.add(int(name[len(prefix):]))
                    message = pubsub.get_message(timeout=0)
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + FALLBACK_POLL_SECONDS
                    with self.lock:
                        woken = set(self.feeds)
                with self.lock:
                    feeds = [self.feeds[run_id] for run_id in woken if run_id in self.feeds]
                if feeds:
                    with engine.connect() as connection:
                        for feed in feeds:
                            self.read(feed, connection)
            except Exception as exc:  # Redis or the database away: retry, streams keep their frames
                log.warning("event hub: %s; retrying", type(exc).__name__)
                if isinstance(exc, redis.RedisError):
                    self._redis_lost()
                if pubsub is not None:
                    pubsub.close()
                    pubsub = None
                time.sleep(1)
        if pubsub is not None:
            pubsub.close()


def hub():
    return current_app.extensions["runner-event-hub"]


def _stored_frames(run_id, after, up_to, serialize):
    """Frames of the run's stored events with `after < id <= up_to`, from the database (≤ 500)."""
    batch = db.session.scalars(
        db.select(AgentEvent)
        .where(AgentEvent.run_id == run_id, AgentEvent.id > after, AgentEvent.id <= up_to)
        .order_by(AgentEvent.id)
        .limit(500)
    ).all()
    frames = [(event.id, frame(event.id, "agent_event", serialize(event))) for event in batch]
    db.session.remove()
    return frames


def stream(run_id, last_event_id, serialize, slots, terminal_statuses, ping_seconds=PING_SECONDS):
    """Yield the SSE frames of run `run_id` after `last_event_id`: stored events first, then new
    ones as they are committed, then `end` once the run is terminal and everything was sent.

    `serialize(event)` gives the JSON body of an event. Live frames come from the process's
    EventHub; only a stream behind what the hub holds reads the database (and releases its session
    before yielding, so an open stream holds no pooled connection).
    """
    events_hub = hub()
    feed = events_hub.attach(run_id, serialize)
    try:
        if feed.status is UNREAD:
            with db.engine.connect() as connection:
                events_hub.read(feed, connection)
        yield "retry: 3000\n\n"
        last = last_event_id or 0
        last_ping = time.monotonic()
        seen = None  # the feed's version last looked at
        while True:
            if feed.version == seen:  # nothing new since: wait for the hub, or the next ping
                with events_hub.lock:
                    changed = feed.changed if feed.version == seen else None
                if changed is not None:
                    changed.wait(max(0.0, last_ping + ping_seconds - time.monotonic()))
            with events_hub.lock:
                seen, floor, status, newest = feed.version, feed.floor, feed.status, feed.last_id
                texts = ()
                if last >= floor:
                    last, texts = feed.frames_after(last)
            if last < floor:  # behind what the hub holds: catch up from the database
                frames = _stored_frames(run_id, last, floor, serialize)
                last = frames[-1][0] if frames else floor
                for _, text in frames:
                    yield text
                seen = None
                continue
            for text in texts:
                yield text
            if status is None or (status in terminal_statuses and last >= newest):  # deleted, or over
                yield frame(event="end", data={"runId": run_id, "status": status})
                return
            if events_hub.redis_lost:
                return  # no wake-ups, no slot: the client reconnects (with Last-Event-ID) later
            if time.monotonic() - last_ping >= ping_seconds:
                last_ping = time.monotonic()
                try:
                    slots.heartbeat()
                except redis.RedisError:
                    return
                yield frame(comment="ping")
    finally:
        events_hub.detach(feed)
        try:
            slots.release()
        except redis.RedisError:
            pass  # the slot expires by itself (STREAM_SLOT_SECONDS)
