"""What the benchmarks share: a real gunicorn (gevent) serving an app, process figures, percentiles."""
import os
import socket
import subprocess
import sys
import time
import urllib.request

REDIS_URL = os.environ.get("RUNNER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")  # as tests/conftest.py


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def start_gunicorn(app_spec, env, log_path, workers=1, ready_path="/api/health", cwd=None):
    """gunicorn -k gevent serving `app_spec` on a free port; (process, port, worker pids)."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(workers), "--no-control-socket",
         "--worker-connections", "2000", "-b", f"127.0.0.1:{port}", app_spec],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
    )
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise AssertionError(open(log_path, errors="replace").read()[-3000:])
            time.sleep(0.1)
    while len(children(process.pid)) < workers:
        time.sleep(0.1)
    return process, port, children(process.pid)


def stop(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
