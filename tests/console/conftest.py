"""Fixtures for the web console's browser tests: Debian's `chromium` driven by Playwright against a
real `runner up` (its own port and data directory; the test's database and Redis).

Without /usr/bin/chromium (`.ci/run` installs it with apt-get) the browser tests skip, saying so.
One database is enough for them (they test the page, the API is tested on both): PostgreSQL when
RUNNER_TEST_DATABASES lists it, else the first one listed. Screenshots go to
`test-artifacts/console/` at the repository root (gitignored), or RUNNER_TEST_ARTIFACTS.
"""
import os
import shutil
import signal

import pytest

from console_browser import ARTIFACTS, CHROMIUM, Console, job_test_module
from helpers import worker_env
from test_up import Up

# The real claude CLI, installed with npm on first use (skips, saying why, without npm).
agent_bin = job_test_module("conftest").agent_bin


@pytest.fixture(scope="session")
def playwright_browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium with apt-get): "
                    "skipping the web console's browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def console_server(app, config, tmp_path, tmp_path_factory):
    """`runner up` on the test's database, Redis (RUNNER_TEST_REDIS_URL) and data directory.

    Rate limits stay on, raised from 60 to 600 a minute: a test does a person's whole session of
    clicks in one minute. Stream tokens live 30 s (STREAM_TOKEN_TTL_SECONDS), so a test can cut a
    stream both before and after its token has expired without waiting out the default.
    """
    up = Up(tmp_path)
    home = tmp_path_factory.mktemp("agent-home")  # the agent CLI's own HOME: no user settings leak in
    up.env.update({
        key: value for key, value in worker_env(config).items() if key.startswith("RUNNER_")
    })
    up.env.update({
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "RUNNER_RATELIMIT_DEFAULT": "600/minute",
        "RUNNER_STREAM_TOKEN_TTL_SECONDS": "30",
    })
    up.start()
    yield Console(up, config)
    if up.process.poll() is None:
        up.process.send_signal(signal.SIGTERM)
        try:
            up.process.wait(20)
        except Exception:
            up.kill()
    up.kill()


@pytest.fixture
def page(playwright_browser, request):
    """A fresh browser context (its own sessionStorage) and page; console errors are collected in
    `page.errors`, CSP violations in `page.csp_violations()`."""
    context = playwright_browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push("
        "{directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile}));"
    )
    page.csp_violations = lambda: page.evaluate("window.__cspViolations")
    yield page
    context.close()


@pytest.fixture
def screenshot(request):
    """`screenshot(page, name)` saves a full-page PNG under the artifacts folder and returns its path."""
    folder = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
