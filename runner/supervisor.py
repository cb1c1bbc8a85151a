"""`runner up`: one process tree for a laptop or a small server.

Migrates and seeds, starts Redis (embedded unless RUNNER_REDIS_URL is set), RQ workers and gunicorn
with gevent workers (an open SSE stream costs a greenlet, not a worker), then waits. Ctrl-C or
SIGTERM stops the server first, then the workers, then Redis; if any child dies, everything stops.
Children run in their own sessions so a terminal's Ctrl-C reaches only this supervisor, which
then stops them in that order.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from runner import create_app
from runner.config import Config
from runner.embedded_redis import EmbeddedRedis

STOP_TIMEOUT = 15.0


class Supervisor:
    def __init__(self, host, port, workers, http_workers):
        self.host, self.port = host, port
        self.workers, self.http_workers = workers, http_workers
        self.children = []  # (name, Popen), in start order
        self.redis = None
        self.stopping = False

    def _on_signal(self, signum, frame):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._start()
            click.echo(f"Runner is up at http://{self.host}:{self.port}/api  (docs: /api/docs; Ctrl-C stops)")
            return self._wait()
        finally:
            self._stop()

    def _start(self):
        if not os.environ.get("RUNNER_REDIS_URL"):
            data_dir = Path(Config().DATA_DIR).resolve()
            self.redis = EmbeddedRedis(data_dir).start()
            os.environ["RUNNER_REDIS_URL"] = self.redis.url  # inherited by every child
            click.echo(f"embedded redis-server at {self.redis.display_url} (data in {self.redis.dir})")

        app = create_app()
        with app.app_context():
            from flask_migrate import upgrade

            from runner import providers

            upgrade()
            added = providers.seed()
            if added:
                click.echo(f"seeded providers: {', '.join(added)}")

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
                "runner:create_app()",
            ],
        )

    def _spawn(self, name, argv):
        self.children.append((name, subprocess.Popen(argv, start_new_session=True)))

    def _wait(self):
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    click.echo(f"{name} exited with {process.returncode}; stopping everything", err=True)
                    return 1
            if self.redis and self.redis.process.poll() is not None:
                click.echo("embedded redis-server exited; stopping everything", err=True)
                return 1
            time.sleep(0.2)
        click.echo("stopping…")
        return 0

    def _stop(self):
        # The server first (no new work), then workers (warm shutdown), then Redis.
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{name} did not stop in time; killing it", err=True)
                process.kill()
                process.wait()
        self.children.clear()
        if self.redis:
            self.redis.stop()
