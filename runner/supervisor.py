"""`runner up`: one process tree for a laptop or a small server.

Migrates and seeds, starts Redis (embedded unless RUNNER_REDIS_URL is set), RQ workers and gunicorn
with gevent workers (an open SSE stream costs a greenlet, not a worker), then waits. Ctrl-C or
SIGTERM stops the server and the workers (gracefully, then by force), fails the runs they were
still running (retry runs them again), then stops Redis. A worker that dies is restarted (runs it
held are failed at once, with an error event); if the server or Redis dies, everything stops. Each child runs in its own session, so a terminal's Ctrl-C reaches only
this supervisor, which then stops them in that order, and so whatever a child started (gunicorn
workers, RQ work horses and their agent processes) can be found and killed with it.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from runner import create_app
from runner.config import Config
from runner.embedded_redis import EmbeddedRedis

# Time for a graceful stop (RQ finishes the job in hand, gunicorn its requests), then for a second
# SIGTERM (RQ's cold shutdown: the job is abandoned), before every process left is killed.
GRACE_SECONDS = 10.0
COLD_SECONDS = 5.0
# Lost runs (their worker died) are failed this often; a dead worker of this machine is seen at
# once, one elsewhere when its heartbeat expires (runner.runs.HEARTBEAT_SECONDS).
REAP_SECONDS = 15.0
# A worker dying more often than this in a minute is not restarted again: everything stops.
MAX_RESTARTS_PER_MINUTE = 5


class Supervisor:
    def __init__(self, host, port, workers, http_workers):
        self.host, self.port = host, port
        self.workers, self.http_workers = workers, http_workers
        self.children = []  # (name, argv, Popen), in start order
        self.restarts = []  # times of worker restarts
        self.redis = None
        self.app = None
        self.signals = 0

    def _on_signal(self, signum, frame):
        self.signals += 1

    def run(self):
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._start()
            if not self.signals:
                click.echo(f"Runner is up at http://{self.host}:{self.port}/api  (docs: /api/docs; Ctrl-C stops)")
            return self._wait()
        finally:
            self._stop()

    def _start(self):
        if not os.environ.get("RUNNER_REDIS_URL"):
            data_dir = Path(Config().DATA_DIR).resolve()
            self.redis = EmbeddedRedis(data_dir).start(preexec_fn=_stop_with_parent(signal.SIGTERM))
            os.environ["RUNNER_REDIS_URL"] = self.redis.url  # inherited by every child
            click.echo(f"embedded redis-server at {self.redis.display_url} (data in {self.redis.dir})")

        app = self.app = create_app()
        with app.app_context():
            from flask_migrate import upgrade

            from runner import providers
            from runner.extensions import db

            upgrade()
            added = providers.seed()
            if added:
                click.echo(f"seeded providers: {', '.join(added)}")
            db.engine.dispose()  # the children connect on their own
        if self.signals:  # stopped while migrating: start nothing more
            return
        # The gunicorn workers' request metrics meet in files here; /metrics sums them (runner.metrics).
        metrics_dir = Path(app.config["DATA_DIR"]) / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

        for index in range(self.workers):
            self._spawn(f"worker-{index + 1}", [sys.executable, "-m", "runner", "worker"])
        self._spawn(
            "http",
            [
                sys.executable, "-m", "gunicorn",
                "--worker-class", "gevent",
                "--workers", str(self.http_workers),
                "--bind", f"{self.host}:{self.port}",
                "--graceful-timeout", "5",
                "--access-logfile", "-",
                # The default socket is one per user ($HOME/.gunicorn): two servers would fight over it.
                "--no-control-socket",
                "runner:create_app()",
            ],
        )

    def _spawn(self, name, argv):
        self.children.append((name, argv, self._popen(argv)))

    @staticmethod
    def _popen(argv):
        return subprocess.Popen(argv, start_new_session=True, preexec_fn=_stop_with_parent(signal.SIGTERM))

    def _restart(self, index):
        """Start worker `index` again; False when workers die too often to keep trying."""
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if len(self.restarts) > MAX_RESTARTS_PER_MINUTE:
            return False
        name, argv, _ = self.children[index]
        self._reap()  # what it was running is lost (an orphaned work horse still running keeps its run)
        self.children[index] = (name, argv, self._popen(argv))
        return True

    def _reap(self):
        """Fail runs whose worker died (a kill -9 leaves them `running` otherwise)."""
        from runner import runs

        try:
            with self.app.app_context():
                lost = runs.reap_lost_runs()
            if lost:
                click.echo(f"failed lost runs: {', '.join(map(str, lost))}", err=True)
        except Exception as exc:  # the next round tries again
            click.echo(f"reaping lost runs failed: {type(exc).__name__}", err=True)

    def _wait(self):
        next_reap = time.monotonic() + REAP_SECONDS
        while not self.signals:
            if time.monotonic() >= next_reap:
                next_reap = time.monotonic() + REAP_SECONDS
                self._reap()
            for index, (name, _, process) in enumerate(self.children):
                if process.poll() is None:
                    continue
                if name.startswith("worker-") and self._restart(index):
                    click.echo(f"{name} exited with {process.returncode}; restarted it", err=True)
                    continue
                click.echo(f"{name} exited with {process.returncode}; stopping everything", err=True)
                return 1
            if self.redis and self.redis.process.poll() is not None:
                click.echo("embedded redis-server exited; stopping everything", err=True)
                return 1
            time.sleep(0.2)
        click.echo("stopping…")
        return 0

    def _stop(self):
        # The server and the workers first (they use Redis), then Redis.
        processes = [process for _, _, process in reversed(self.children)]
        signalled = self.signals
        for process in processes:
            _signal(process, signal.SIGTERM)
        # A further Ctrl-C while stopping means "hurry": skip what is left of the grace period.
        if not self._wait_exit(processes, GRACE_SECONDS, lambda: self.signals > signalled):
            for process in processes:
                _signal(process, signal.SIGTERM)
            self._wait_exit(processes, COLD_SECONDS, lambda: self.signals > signalled + 1)
        for name, _, process in reversed(self.children):
            if process.poll() is None:
                click.echo(f"{name} did not stop in time; killing it", err=True)
            # Also whatever it started and left behind (orphaned gunicorn workers, work horses).
            _kill_session(process.pid)
            process.wait()
        had_children = bool(self.children)
        self.children.clear()
        if had_children and self.app is not None:
            # Runs the workers were still running when stopped: failed now (retry runs them
            # again), not left `running` until some later reaper notices.
            self._reap()
        if self.redis:
            self.redis.stop()

    @staticmethod
    def _wait_exit(processes, seconds, hurry):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not hurry():
            if all(process.poll() is not None for process in processes):
                return True
            time.sleep(0.1)
        return all(process.poll() is not None for process in processes)


def _signal(process, signum):
    if process.poll() is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass


def _kill_session(sid):
    """SIGKILL every process of session `sid` (a child started with start_new_session=True)."""
    try:
        pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        # No /proc (macOS): the child's process group is the best we can find.
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return
    for pid in pids:
        try:
            if pid != os.getpid() and os.getsid(pid) == sid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_with_parent(signum):
    """A preexec_fn asking Linux to send `signum` to the child when this supervisor dies, so a
    `kill -9` of `runner up` does not leave Redis, workers and the server running. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    supervisor = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def preexec():
        libc.prctl(pr_set_pdeathsig, int(signum), 0, 0, 0)
        if os.getppid() != supervisor:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signum)

    return preexec
