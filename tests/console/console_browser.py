"""What the console's browser tests share: which database and browser they use, the scripted model
server of the job tests, the `runner up` under test, and signing in through the page."""
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from helpers import PASSWORD
from test_up import _descendants, _proc_stat

TESTS = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("RUNNER_TEST_ARTIFACTS", TESTS.parent / "test-artifacts")) / "console"
CHROMIUM = os.environ.get("RUNNER_TEST_CHROMIUM", "/usr/bin/chromium")
DATABASES = [name.strip() for name in os.environ.get("RUNNER_TEST_DATABASES", "sqlite,postgresql").split(",") if name.strip()]
E2E_DATABASE = "postgresql" if "postgresql" in DATABASES else DATABASES[0]
# For the browser tests' modules: `pytestmark = one_database`.
one_database = pytest.mark.parametrize("database_url", [E2E_DATABASE], indirect=True)


def job_test_module(name):
    """A module of tests/jobs (the scripted model server, the agent CLI fixtures), loaded by path:
    that folder is on sys.path only when its own tests are collected."""
    spec = importlib.util.spec_from_file_location(f"runner_job_tests_{name}", TESTS / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


model_server = job_test_module("model_server")


class Console:
    """A `runner up` serving the console, and what a test needs around it."""

    def __init__(self, up, config):
        self.up, self.config = up, config
        self.base = up.base

    def url(self, path=""):
        return f"{self.base}/console/{path.lstrip('/')}"

    def http_workers(self):
        """The gunicorn worker processes (children of the gunicorn master) serving requests now."""
        processes = _descendants(self.up.process.pid)
        masters = {pid for pid, (_, cmd) in processes.items() if "gunicorn" in cmd and _proc_stat(pid)[0] == self.up.process.pid}
        return [pid for pid, (_, cmd) in processes.items() if "gunicorn" in cmd and _proc_stat(pid)[0] in masters]

    def kill_http_workers(self):
        """SIGKILL every gunicorn worker: each open connection (the event stream) is cut by the
        server's side with no goodbye; the gunicorn master starts fresh workers."""
        workers = self.http_workers()
        assert workers, self.up.log()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            fresh = [pid for pid in self.http_workers() if pid not in workers]
            if fresh:
                return workers
            time.sleep(0.1)
        raise AssertionError(f"gunicorn started no new worker:\n{self.up.log()}")


def sign_in(page, console, email, password=PASSWORD):
    page.goto(console.url())
    page.wait_for_selector("form.signin")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("main[data-page=projects] h1")
