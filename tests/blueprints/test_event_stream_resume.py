"""SSE resume under churn: a client dropped at random points many times, resuming each time with
Last-Event-ID, while events keep being committed, receives every event exactly once and in order;
and a Last-Event-ID at the end of the stream waits for the next event instead of ending."""
import json
import queue
import random
import threading
import time

import pytest

from helpers import ApiClient, add_events, bare_run, sse_frames
from runner.extensions import db
from runner.models import AgentEvent

RUNS = "/api/runs"


@pytest.fixture
def run_id(app, user_api):
    return bare_run(app, user_api.email)



class _Connection(threading.Thread):
    """One client connection in its own thread (a streamed test response keeps its request context
    until closed): opens the stream after `last_id`, reads at most `budget` agent events (None: to
    the end), then goes away."""

    def __init__(self, app, token, run_id, last_id, budget, by_query=False):
        super().__init__(daemon=True)
        self.client = ApiClient(app.test_client(), token)
        self.run_id, self.last_id, self.budget, self.by_query = run_id, last_id, budget, by_query
        self.received, self.ended, self.status, self.error = [], None, None, None

    def run(self):
        try:
            kwargs = {"buffered": False}
            if self.last_id:
                if self.by_query:
                    kwargs["query_string"] = {"lastEventId": self.last_id}
                else:
                    kwargs["headers"] = {"Last-Event-ID": str(self.last_id)}
            response = self.client.get(f"{RUNS}/{self.run_id}/events/stream", **kwargs)
            self.status = response.status_code
            if self.status != 200:
                return
            try:
                for chunk in response.response:
                    for fields in sse_frames([chunk]):
                        if fields.get("event") == "agent_event":
                            body = json.loads(fields["data"])
                            assert fields["id"] == str(body["id"])
                            self.received.append((body["id"], body["message"]))
                        elif fields.get("event") == "end":
                            self.ended = json.loads(fields["data"])
                    if self.ended or (self.budget is not None and len(self.received) >= self.budget):
                        break
            finally:
                response.close()  # the client goes away (here: mid-stream, at a random frame)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_client_dropped_at_random_points_gets_every_event_once_in_order(app, user_api, run_id):
    rng = random.Random(20261124)
    total = 240
    producing = threading.Event()

    def producer():
        producing.set()
        for n in range(total):
            # Sometimes one event, sometimes a burst committed together.
            burst = [f"event {n}"] if n % 7 else [f"event {n}", f"event {n} bis"]
            add_events(app, run_id, *burst)
            time.sleep(rng.choice((0, 0.001, 0.005, 0.01)))
        add_events(app, run_id, "last words", finish="completed")

    writer = threading.Thread(target=producer, daemon=True)
    writer.start()
    producing.wait(5)

    received, reconnects, last_id, ended = [], 0, 0, None
    while ended is None:
        final = reconnects >= 30
        connection = _Connection(app, user_api.token, run_id, last_id, None if final else rng.randint(0, 12),
                                 by_query=reconnects % 5 == 4)
        connection.start()
        connection.join(60)
        assert not connection.is_alive(), "a stream hung"
        if connection.error:
            raise connection.error
        assert connection.status == 200, connection.status
        received += connection.received
        if connection.received:
            last_id = connection.received[-1][0]
        ended = connection.ended
        reconnects += 1
        if not final and rng.random() < 0.3:
            time.sleep(rng.choice((0.01, 0.05, 0.1)))  # away for a while: the next one replays a backlog
    writer.join(30)

    with app.app_context():
        stored = [(e.id, e.message) for e in db.session.scalars(
            db.select(AgentEvent).where(AgentEvent.run_id == run_id).order_by(AgentEvent.id))]
    assert reconnects > 30
    assert len(stored) == 1 + total + total // 7 + 1 + 2  # created, events, bursts' extras, last words, status
    assert received == stored  # every event, exactly once, in order
    assert ended == {"runId": run_id, "status": "completed"}


def _read_in_background(app, token, run_id, **request):
    """Open the run's stream in a thread of its own; its status and frames arrive on a queue."""
    frames = queue.Queue()

    def reader():
        client = ApiClient(app.test_client(), token)
        response = client.get(f"{RUNS}/{run_id}/events/stream", buffered=False, **request)
        frames.put(("status", response.status_code))
        try:
            for chunk in response.response:
                for fields in sse_frames([chunk]):
                    frames.put(("frame", fields))
                    if fields.get("event") == "end":
                        return
        finally:
            response.close()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return frames, thread


def test_last_event_id_at_the_end_waits_for_the_next_event(app, user_api, run_id):
    add_events(app, run_id, "one", "two")
    with app.app_context():
        last = db.session.scalar(db.select(db.func.max(AgentEvent.id)).where(AgentEvent.run_id == run_id))
    frames, thread = _read_in_background(app, user_api.token, run_id, headers={"Last-Event-ID": str(last)})
    assert frames.get(timeout=10) == ("status", 200)
    assert frames.get(timeout=10) == ("frame", {"retry": "3000"})
    # Nothing to send and the run goes on: no frame, and certainly no `end`.
    with pytest.raises(queue.Empty):
        frames.get(timeout=1.5)
    add_events(app, run_id, "three")
    kind, fields = frames.get(timeout=4)  # woken by the publish, well before the 5 s fallback read
    assert kind == "frame" and fields.get("event") == "agent_event", fields
    body = json.loads(fields["data"])
    assert body["message"] == "three" and body["id"] > last
    add_events(app, run_id, finish="cancelled")
    kind, fields = frames.get(timeout=10)
    assert fields.get("event") == "agent_event" and json.loads(fields["data"])["eventType"] == "status_changed"
    kind, fields = frames.get(timeout=10)
    assert fields.get("event") == "end" and json.loads(fields["data"]) == {"runId": run_id, "status": "cancelled"}
    thread.join(10)
    assert not thread.is_alive()


def test_last_event_id_past_every_stored_id_waits_too(app, user_api, run_id):
    """An id beyond this run's last event (ids are global: another run's event) is not an error and
    does not end the stream; it waits like any caught-up client."""
    with app.app_context():
        last = db.session.scalar(db.select(db.func.max(AgentEvent.id)))
    frames, thread = _read_in_background(app, user_api.token, run_id, query_string={"lastEventId": last + 1})
    assert frames.get(timeout=10) == ("status", 200)
    assert frames.get(timeout=10) == ("frame", {"retry": "3000"})
    with pytest.raises(queue.Empty):
        frames.get(timeout=1.0)
    # The run ends: the status event (its id is past last + 1) and then `end`.
    add_events(app, run_id, "a", "b", finish="completed")
    got = [frames.get(timeout=10)[1] for _ in range(2)]
    assert all(f.get("event") in ("agent_event", "end") for f in got)
    while got[-1].get("event") != "end":
        got.append(frames.get(timeout=10)[1])
    assert json.loads(got[-1]["data"]) == {"runId": run_id, "status": "completed"}
    thread.join(10)
