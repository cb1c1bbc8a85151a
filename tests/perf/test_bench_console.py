"""Benchmark: the web console in Debian's chromium (run with -m perf -s).

Against a real gunicorn (gevent) on this test's database and Redis: the weight and first paint of
the console's first load (cold cache), what a reload costs once its versioned assets are cached,
what drawing a Mermaid diagram adds (loaded on demand), and the run page of a run with
BENCH_CONSOLE_EVENTS (10,000) events: time until all are in the timeline, how many rows the DOM
holds, and the frame times of scrolling through it. Browser figures come from the Performance API.
Prints figures; asserts only what makes them meaningful (every event arrived).
"""
import os
import statistics
import time

import pytest

from helpers import PASSWORD, bare_run
from serving import pct, start_gunicorn, stop

pytestmark = pytest.mark.perf
EVENTS = int(os.environ.get("BENCH_CONSOLE_EVENTS", 10_000))
CHROMIUM = os.environ.get("RUNNER_TEST_CHROMIUM", "/usr/bin/chromium")

WEIGHT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
  return {
    requests: 1 + resources.length,
    transferred: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    decoded: nav.decodedBodySize + resources.reduce((sum, r) => sum + r.decodedBodySize, 0),
    firstPaint: paint['first-paint'], firstContentfulPaint: paint['first-contentful-paint'],
    domContentLoaded: nav.domContentLoadedEventEnd,
  };
}"""

SCROLL = """async () => {
  const list = document.querySelector('.timeline');
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const times = [];
  list.scrollTop = 0;
  await frame(); await frame();
  const started = performance.now();
  let last = started;
  // Down through the whole list a viewport at a time, then 200 small wheel-like steps back up.
  while (list.scrollTop + list.clientHeight < list.scrollHeight - 1) {
    list.scrollTop += list.clientHeight;
    await frame();
    const now = performance.now(); times.push(now - last); last = now;
  }
  for (let i = 0; i < 200; i++) {
    list.scrollTop -= 120;
    await frame();
    const now = performance.now(); times.push(now - last); last = now;
  }
  return { total: performance.now() - started, frames: times, rows: list.querySelectorAll('.event').length };
}"""


def _events(app, run_id, count):
    from runner import events, states
    from runner.extensions import db
    from runner.models import Run

    kinds = ("tool_call", "tool_result", "file_updated", "log", "agent_message")
    with app.app_context():
        # With the run's first event (bare_run) and its last (completed): `count` in all.
        for start in range(0, count - 2, 1000):
            events.add_many(run_id, [
                {"event_type": kinds[i % len(kinds)], "message": f"event {i}: " + "x" * (i % 120),
                 "path": f"src/module_{i % 50}.py" if i % 3 == 0 else None, "data": {"i": i}}
                for i in range(start, min(start + 1000, count - 2))
            ])
            db.session.commit()
        states.transition(Run, run_id, states.Action(states.RUN_STATUSES, "completed"))
        events.status_changed(run_id, "draft", "completed")
        db.session.commit()


def test_bench_console(app, make_user, runner_server_env, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    _, email = make_user()
    run_id = bare_run(app, email)
    started = time.perf_counter()
    _events(app, run_id, EVENTS)
    print(f"\n{EVENTS} events stored in {time.perf_counter() - started:.1f} s")

    process, port, _ = start_gunicorn("runner:create_app()", runner_server_env, tmp_path / "gunicorn.log")
    base = f"http://127.0.0.1:{port}/console/"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()

            page.goto(base)
            page.wait_for_selector("form.signin")
            cold = page.evaluate(WEIGHT)
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("form.signin button[type=submit]")
            page.wait_for_selector("main[data-page=projects] h1")
            page.reload()
            page.wait_for_selector("main[data-page=projects] h1")
            warm = page.evaluate(WEIGHT)

            before = page.evaluate("performance.getEntriesByType('resource').length")
            module = page.evaluate("document.querySelector('script[type=module]').src.replace(/app\\.js$/, 'markdown.js')")
            diagram_ms = page.evaluate("""async ([module]) => {
              const t = performance.now();
              const { renderMarkdown } = await import(module);
              const div = document.createElement('div');
              document.body.append(div);
              await renderMarkdown(div, '# Map\\n\\n```mermaid\\nflowchart LR\\n  a[web] --> b[api]\\n  b --> c[(db)]\\n```\\n');
              return performance.now() - t;
            }""", [module])
            mermaid = page.evaluate(f"""() => performance.getEntriesByType('resource').slice({before})
              .reduce((acc, r) => ({{ requests: acc.requests + 1, transferred: acc.transferred + r.transferSize }}), {{ requests: 0, transferred: 0 }})""")

            page.goto(f"{base}runs/{run_id}")
            page.wait_for_function(
                f"() => document.querySelector('.timeline')?.dataset.count === '{EVENTS}'"
                " && document.querySelector('.stream-state').dataset.state === 'ended'", timeout=120_000)
            loaded = page.evaluate("performance.now() - performance.getEntriesByType('navigation')[0].startTime")
            # Then the newest rows drawn (the list follows the newest event): two frames later.
            drawn = page.evaluate("""() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(
              () => resolve(performance.now() - performance.getEntriesByType('navigation')[0].startTime))))""")
            run_page = page.evaluate(WEIGHT)
            scrolled = page.evaluate(SCROLL)
            duplicates = page.get_attribute(".stream-state", "data-duplicates")
            browser.close()
    finally:
        stop(process)

    assert duplicates == "0"
    kb = lambda n: f"{n / 1024:.0f} KB"  # noqa: E731
    print(f"first load, cold cache: {cold['requests']} requests, {kb(cold['transferred'])} transferred "
          f"({kb(cold['decoded'])} decoded); first paint {cold['firstPaint']:.0f} ms, "
          f"first contentful paint {cold['firstContentfulPaint']:.0f} ms, DOMContentLoaded {cold['domContentLoaded']:.0f} ms")
    print(f"reload, assets cached: {warm['requests']} requests, {kb(warm['transferred'])} transferred; "
          f"first contentful paint {warm['firstContentfulPaint']:.0f} ms")
    print(f"first Mermaid diagram: {mermaid['requests']} more requests, {kb(mermaid['transferred'])}, drawn in {diagram_ms:.0f} ms")
    print(f"run page with {EVENTS} events: all in the timeline {loaded:.0f} ms after navigation, drawn by {drawn:.0f} ms "
          f"(the page's requests: {run_page['requests']}, {kb(run_page['transferred'])} with the event stream itself)")
    frames = scrolled["frames"]
    print(f"scrolling it: {len(frames)} frames in {scrolled['total']:.0f} ms, frame p50 {statistics.median(frames):.1f} ms, "
          f"p95 {pct(frames, 95):.1f} ms, max {max(frames):.1f} ms; {scrolled['rows']} rows in the DOM")
