"""GET /api/runs/{run}/events/stream: SSE frames as the contract shows them, resume after
Last-Event-ID, live delivery through Redis wake-ups, `end` when the run is over, 4 streams per user."""
import json
import threading
import time

import pytest

from helpers import ApiClient, add_events, assert_problem, bare_run, sse_frames, wait_for

RUNS = "/api/runs"


@pytest.fixture
def run_id(app, user_api):
    return bare_run(app, user_api.email)




def test_a_finished_run_replays_every_event_then_ends(app, user_api, run_id):
    add_events(app, run_id, "one", "two", finish="completed")
    response = user_api.get(f"{RUNS}/{run_id}/events/stream")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    raw = response.get_data(as_text=True)
    assert raw.startswith("retry: 3000\n\n")
    frames = sse_frames([raw])
    agent_events = [f for f in frames if f.get("event") == "agent_event"]
    assert [json.loads(f["data"])["message"] for f in agent_events] == ["created", "one", "two", "draft → completed"]
    for fields in agent_events:
        body = json.loads(fields["data"])
        assert fields["id"] == str(body["id"]) and body["runId"] == run_id and "eventType" in body
    assert [int(f["id"]) for f in agent_events] == sorted(int(f["id"]) for f in agent_events)
    assert frames[-1]["event"] == "end"
    assert json.loads(frames[-1]["data"]) == {"runId": run_id, "status": "completed"}
    # The exact frame format of the contract.
    first = agent_events[0]
    assert f"id: {first['id']}\nevent: agent_event\ndata: {first['data']}\n\n" in raw


def test_last_event_id_resumes_after_that_event(app, user_api, run_id):
    add_events(app, run_id, "one", "two", "three", finish="failed")
    everything = [f for f in sse_frames([user_api.get(f"{RUNS}/{run_id}/events/stream").get_data()]) if "id" in f]
    cut = everything[1]["id"]
    # Each stream is read to its end before the next request (a streamed test response keeps its
    # request context until then).
    by_header = user_api.get(f"{RUNS}/{run_id}/events/stream", headers={"Last-Event-ID": cut}).get_data()
    by_query = user_api.get(f"{RUNS}/{run_id}/events/stream", query_string={"lastEventId": cut}).get_data()
    for raw in (by_header, by_query):
        ids = [f["id"] for f in sse_frames([raw]) if "id" in f]
        assert ids == [f["id"] for f in everything[2:]]
    assert "Last-Event-ID" in assert_problem(
        user_api.get(f"{RUNS}/{run_id}/events/stream", headers={"Last-Event-ID": "abc"}), 422
    )["errors"]


def test_new_events_arrive_live_and_the_stream_ends_with_the_run(app, user_api, run_id):
    response = user_api.get(f"{RUNS}/{run_id}/events/stream", buffered=False)
    chunks = (c if isinstance(c, bytes) else c.encode() for c in response.response)
    assert next(chunks).startswith(b"retry: 3000")
    received = []

    def later():
        time.sleep(0.5)
        add_events(app, run_id, "live one")
        time.sleep(0.5)
        add_events(app, run_id, "live two", finish="completed")

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    for chunk in chunks:
        received.append(chunk)
        if b"event: end" in chunk:
            break
    writer.join()
    response.close()
    messages = [json.loads(f["data"])["message"] for f in sse_frames(received) if f.get("event") == "agent_event"]
    assert messages[-3:] == ["live one", "live two", "draft → completed"]
    # Delivered by the Redis wake-up, well before the 5 s fallback read would have found them.
    assert time.monotonic() - started < 4


class _OpenStream(threading.Thread):
    """A client holding a stream open in its own thread (as each stream has its own greenlet or
    thread in the server) until told to go away."""

    def __init__(self, app, token, run_id):
        super().__init__(daemon=True)
        self.client = ApiClient(app.test_client(), token)
        self.run_id, self.opened, self.leave = run_id, threading.Event(), threading.Event()
        self.status = None

    def run(self):
        response = self.client.get(f"{RUNS}/{self.run_id}/events/stream", buffered=False)
        self.status = response.status_code
        if response.status_code == 200:
            next(iter(response.response))  # connected: the stream holds its slot
        self.opened.set()
        self.leave.wait(30)
        response.close()


def test_a_fifth_concurrent_stream_is_a_429(app, user_api, run_id):
    streams = [_OpenStream(app, user_api.token, run_id) for _ in range(4)]
    for stream in streams:
        stream.start()
        assert stream.opened.wait(10) and stream.status == 200
    fifth = user_api.get(f"{RUNS}/{run_id}/events/stream")
    assert assert_problem(fifth, 429, "too-many-streams")["retryAfter"] > 0

    streams[0].leave.set()  # a client goes away: its slot is free again
    streams[0].join(10)
    again = _OpenStream(app, user_api.token, run_id)
    again.start()
    assert again.opened.wait(10) and again.status == 200
    for stream in streams[1:] + [again]:
        stream.leave.set()
        stream.join(10)


def test_a_stream_token_opens_streams_only(app, user_api, anon, run_id):
    add_events(app, run_id, finish="completed")
    issued = user_api.post("/api/auth/stream-token")
    assert issued.status_code == 201
    token = issued.get_json()["streamToken"]
    assert "|" not in token  # not the bearer token itself
    streamed = anon.get(f"{RUNS}/{run_id}/events/stream", query_string={"streamToken": token})
    assert streamed.status_code == 200 and "event: end" in streamed.get_data(as_text=True)
    # Anywhere else it is no credential at all.
    assert_problem(anon.get("/api/auth/me", query_string={"streamToken": token}), 401)
    assert_problem(anon.get(f"{RUNS}/{run_id}/events/stream", query_string={"streamToken": token + "x"}), 401)
    # Revoking the token it stands for ends it too.
    user_api.post("/api/auth/logout")
    assert_problem(anon.get(f"{RUNS}/{run_id}/events/stream", query_string={"streamToken": token}), 401)


def test_other_users_streams_are_404(user_api, make_user, login, run_id):
    _, email = make_user()
    assert_problem(login(email).get(f"{RUNS}/{run_id}/events/stream"), 404)
    assert_problem(ApiClient(user_api.client).get(f"{RUNS}/{run_id}/events/stream"), 401)


def test_streams_behind_the_hubs_buffer_catch_up_from_the_database(app, user_api, run_id):
    """One reader per run feeds every stream of it in the process and keeps the last BUFFER frames;
    a stream that falls further behind reads the missing events from the database, once each."""
    hub = app.extensions["runner-event-hub"]
    hub.BUFFER = 8  # trims once it holds more than 10 frames
    go_on = threading.Event()
    results = {}

    def watch(name, pause):
        # A streamed test response keeps its contexts on its thread: a client and thread per stream.
        client = ApiClient(app.test_client(), user_api.token)
        response = client.get(f"{RUNS}/{run_id}/events/stream", buffered=False)
        received = []
        for chunk in response.response:
            received.append(chunk)
            if pause:
                pause = False
                go_on.wait(30)  # fall behind while the others go on
            if (b"event: end" if isinstance(chunk, bytes) else "event: end") in chunk:
                break
        response.close()
        results[name] = sse_frames(received)

    watchers = [threading.Thread(target=watch, args=(name, name == "slow")) for name in ("fast", "slow")]
    for watcher in watchers:
        watcher.start()
    wait_for(lambda: run_id in hub.feeds and hub.feeds[run_id].streams == 2)
    feed = hub.feeds[run_id]  # one feed for both streams
    messages = [f"event {n}" for n in range(40)]
    for start in range(0, 40, 5):  # several publishes: the hub trims as it goes
        add_events(app, run_id, *messages[start:start + 5])
    add_events(app, run_id, finish="completed")
    wait_for(lambda: "fast" in results)
    assert feed.floor > 0  # trimmed: the slow stream is behind what the feed holds
    go_on.set()
    for watcher in watchers:
        watcher.join(30)
    for name in ("fast", "slow"):
        bodies = [json.loads(f["data"]) for f in results[name] if f.get("event") == "agent_event"]
        assert [b["message"] for b in bodies] == ["created", *messages, "draft → completed"], name
        assert [b["id"] for b in bodies] == sorted({b["id"] for b in bodies}), name  # in order, once each
        assert json.loads(results[name][-1]["data"])["status"] == "completed"
    wait_for(lambda: run_id not in hub.feeds)  # the last stream gone, the feed is dropped
