"""`runner up` end to end: a real process tree on SQLite and the embedded Redis, served over HTTP,
stopped by SIGTERM or a terminal's Ctrl-C with nothing left running."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import redis
from rq import Queue, Worker

START_TIMEOUT = 30
STOP_TIMEOUT = 20


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, token=None):
    """(status, JSON body) of a GET over real HTTP."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _proc_stat(pid):
    """(ppid, start time, state) of a live process, or None. Start time tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), fields[19], fields[0]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _descendants(root):
    """{pid: (start time, command line)} of every live process below `root`."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))):
            children.setdefault(stat[0], []).append(int(entry))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        stat = _proc_stat(pid)
        if stat:
            found[pid] = (stat[1], _cmdline(pid))
            todo.extend(children.get(pid, []))
    return found


def _still_running(processes):
    """The recorded processes that still run (same pid and start time, not a zombie)."""
    left = {}
    for pid, (started, cmdline) in processes.items():
        stat = _proc_stat(pid)
        if stat and stat[1] == started and stat[2] != "Z":
            left[pid] = cmdline
    return left


class Up:
    """A `runner up` subprocess with its own data directory and no RUNNER_* settings but that one."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "var"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
        self.env["RUNNER_DATA_DIR"] = str(self.data_dir)
        self.log_path = tmp_path / "up.log"
        self.process = None

    def start(self):
        with open(self.log_path, "wb") as log:
            # Its own session, like a shell's job: a Ctrl-C is a SIGINT to its process group.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runner", "up", "--port", str(self.port), "--workers", "1"],
                env=self.env, cwd=self.tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"runner up exited early:\n{self.log()}"
            try:
                if _get(self.base + "/api/health")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"GET /api/health never answered:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace")

    def cli(self, *args):
        result = subprocess.run(
            [sys.executable, "-m", "runner", *args], env=self.env, cwd=self.tmp_path,
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def embedded_redis(self):
        return redis.Redis.from_url((self.data_dir / "redis" / "url").read_text().strip())

    def wait_for_worker(self, connection, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = Worker.all(connection=connection)
            if workers:
                return workers
            time.sleep(0.2)
        raise AssertionError(f"no RQ worker registered in the embedded Redis:\n{self.log()}")

    def stop(self, send):
        send()
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"runner up did not stop within {STOP_TIMEOUT} s:\n{self.log()}") from None

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def up(tmp_path):
    server = Up(tmp_path)
    yield server
    server.kill()  # only after a failed test; killing the supervisor ends its children too


def _assert_tree(processes):
    commands = [cmdline for _, cmdline in processes.values()]
    assert any("redis-server" in c for c in commands), commands
    assert any("runner worker" in c for c in commands), commands
    assert sum("gunicorn" in c for c in commands) >= 2, commands  # the master and a gevent worker


def test_up_serves_the_api_on_sqlite_and_embedded_redis_and_stops_on_sigterm(up):
    up.start()
    status, body = _get(up.base + "/api/ready")
    assert (status, body["checks"]) == (200, {"database": "ok", "redis": "ok"})
    assert (up.data_dir / "runner.db").exists()

    # The CLI, with the same environment, works on the server's database.
    assert "created" in up.cli("users", "create", "ops@example.com", "--password", "correct horse battery")
    token = up.cli("tokens", "create", "ops@example.com").strip()
    status, me = _get(up.base + "/api/auth/me", token)
    assert status == 200, me
    assert me["email"] == "ops@example.com"
    assert "runs:start" in me["abilities"]

    # /metrics sums the gunicorn workers' request figures (multi-process files in the data dir).
    up.cli("users", "create", "admin@example.com", "--admin", "--password", "correct horse battery")
    admin_token = up.cli("tokens", "create", "admin@example.com").strip()
    request = urllib.request.Request(up.base + "/metrics", headers={"Authorization": f"Bearer {admin_token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        metrics = response.read().decode()
    assert 'runner_http_request_duration_seconds_count{method="GET",route="/api/auth/me",status="200"} 1.0' in metrics
    assert 'runner_runs{status="draft"} 0.0' in metrics
    assert list((up.data_dir / "metrics").glob("*.db"))

    # The RQ worker listens on Runner's queues in the embedded Redis, which wants its password.
    with up.embedded_redis() as connection:
        (worker,) = up.wait_for_worker(connection)
        assert worker.queue_names() == ["runs", "default"]
        address = {k: connection.connection_pool.connection_kwargs[k] for k in ("host", "port")}
        # Another `runner worker` on this data directory finds the embedded Redis by itself.
        job = Queue("probe", connection=connection).enqueue("os.getpid")
        up.cli("worker", "--burst", "--queues", "probe")
        assert job.get_status(refresh=True) == "finished"
    with redis.Redis(**address) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert "@" not in up.log()  # the password is never printed

    processes = _descendants(up.process.pid)
    _assert_tree(processes)
    assert up.stop(lambda: up.process.send_signal(signal.SIGTERM)) == 0, up.log()
    assert _still_running(processes) == {}
    assert not (up.data_dir / "redis" / "url").exists()


def test_ctrl_c_stops_everything_and_redis_last(up):
    up.start()
    with up.embedded_redis() as connection:
        up.wait_for_worker(connection)
    processes = _descendants(up.process.pid)
    _assert_tree(processes)
    # A terminal's Ctrl-C goes to the whole foreground process group, not only to `runner up`.
    assert up.stop(lambda: os.killpg(up.process.pid, signal.SIGINT)) == 0, up.log()
    assert _still_running(processes) == {}
    # The worker said goodbye to Redis before Redis went away.
    assert "could not connect to Redis" not in up.log()
    assert "Traceback" not in up.log()


# Ticks until the file named by its prompt exists, then exits 0: a run that takes as long as the test wants.
TICKER = r"""
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
n = 0
while not marker.exists():
    print(f"tick {n}", flush=True); n += 1; time.sleep(0.1)
print("done", flush=True)
"""


def _call(up, method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(up.base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", **({"Content-Type": "application/json"} if data else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _running_run(up, tmp_path):
    """A user's run of the ticking agent, running under `runner up`: (token, run id, marker file)."""
    from gitrepo import origin_url

    up.cli("users", "create", "admin@example.com", "--admin", "--password", "correct horse battery")
    token = up.cli("tokens", "create", "admin@example.com").strip()
    status, elevated = _call(up, "POST", "/api/auth/elevate", token,
                             {"password": "correct horse battery", "abilities": ["settings:write"]})
    assert status == 201, elevated
    status, body = _call(up, "PUT", "/api/settings/providers/command", elevated["token"],
                         {"enabled": True, "command": [sys.executable, "-c", TICKER, "{prompt}"]})
    assert status == 200, body
    status, project = _call(up, "POST", "/api/projects", token,
                            {"name": "demo", "repositoryUrl": origin_url(tmp_path / "origin")})
    assert status == 202, project
    deadline = time.monotonic() + 60
    while _call(up, "GET", f"/api/projects/{project['id']}", token)[1]["status"] != "ready":
        assert time.monotonic() < deadline, up.log()
        time.sleep(0.2)
    marker = tmp_path / "agent-may-finish"
    status, run = _call(up, "POST", "/api/runs", token, {"projectId": project["id"], "title": "tick",
                                                          "prompt": str(marker), "selectedAgent": "command"})
    assert status == 201, run
    assert _call(up, "POST", f"/api/runs/{run['id']}/start", token)[0] == 202
    _wait_status(up, token, run["id"], ("running",), 60)
    time.sleep(1)  # ticking
    return token, run["id"], marker


def _wait_status(up, token, run_id, statuses, seconds):
    deadline = time.monotonic() + seconds
    while True:
        run = _call(up, "GET", f"/api/runs/{run_id}", token)[1]
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, (run, up.log()[-3000:])
        time.sleep(0.2)


def test_a_worker_killed_mid_run_is_replaced_its_run_failed_within_60s_and_retry_succeeds(up, tmp_path):
    from runner.supervisor import _kill_session

    up.start()
    token, run_id, marker = _running_run(up, tmp_path)
    (worker,) = [pid for pid, (_, cmd) in _descendants(up.process.pid).items()
                 if cmd.endswith("runner worker ") and _proc_stat(pid)[0] == up.process.pid]  # not its work horse
    killed_at = time.monotonic()
    _kill_session(worker)  # kill -9 of the worker and its work horse, mid-run
    failed = _wait_status(up, token, run_id, ("failed",), 60)
    assert time.monotonic() - killed_at < 60
    assert failed["statusDetail"].startswith("Lost: its worker stopped")
    status, events = _call(up, "GET", f"/api/runs/{run_id}/events?severity=error", token)
    assert any(e["eventType"] == "error" and "lost" in e["message"] for e in events["data"]), events
    # runner up started another worker: the retry runs, and completes once the agent may finish.
    assert _call(up, "POST", f"/api/runs/{run_id}/retry", token)[0] == 202
    _wait_status(up, token, run_id, ("running",), 60)
    marker.write_text("go")
    assert _wait_status(up, token, run_id, ("completed", "failed"), 60)["status"] == "completed"
    assert "restarted it" in up.log()
    assert up.stop(lambda: up.process.send_signal(signal.SIGTERM)) == 0, up.log()


def test_sigterm_during_a_run_leaves_no_run_running(up, tmp_path):
    import sqlite3

    up.start()
    token, run_id, _ = _running_run(up, tmp_path)
    processes = _descendants(up.process.pid)
    assert up.stop(lambda: up.process.send_signal(signal.SIGTERM)) == 0, up.log()
    assert _still_running(processes) == {}
    with sqlite3.connect(up.data_dir / "runner.db") as db:
        status, detail = db.execute("select status, status_detail from runs where id = ?", (run_id,)).fetchone()
        errors = db.execute("select count(*) from agent_events where run_id = ? and event_type = 'error'", (run_id,)).fetchone()
    assert (status, detail) == ("failed", "Lost: its worker stopped."), up.log()[-3000:]
    assert errors == (1,)
