"""Benchmark: API throughput and latency on the real server (run with -m perf -s).

gunicorn -k gevent (BENCH_API_WORKERS, default 1) serving Runner on this test's database and Redis,
and next to it the same gunicorn serving a bare Flask app (tests/perf/bare_app.py). CLIENTS client
threads, each on its own keep-alive HTTP/1.1 connection, send requests back to back for SECONDS per
endpoint; printed: requests/s and p50/p99 latency of
- the bare Flask endpoint (the floor),
- GET /api/health (Runner's pipeline, no token),
- GET /api/runs/{run} (token, limiter on, the run with its timeline summary),
- GET /api/runs/{run}/events?limit=50 (the events backfill, a run with 1,000 events).
The clients share the machine's cores with the server: the ratios to the floor are the figures to
read. Asserts only that every answer was a 200.
"""
import http.client
import os
import threading
import time

import pytest

from helpers import add_events, bare_run
from serving import pct, start_gunicorn, stop

pytestmark = pytest.mark.perf
CLIENTS = int(os.environ.get("BENCH_API_CLIENTS", 8))
SECONDS = float(os.environ.get("BENCH_API_SECONDS", 4))
WORKERS = int(os.environ.get("BENCH_API_WORKERS", 1))


def _load(port, path, token=None):
    """(requests/s, latencies in ms, non-200 answers) of CLIENTS connections hammering `path`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies, failures = [], []
    lock = threading.Lock()
    start_line = threading.Barrier(CLIENTS + 1)

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, bad = [], 0
        start_line.wait()
        deadline = time.perf_counter() + SECONDS
        while (now := time.perf_counter()) < deadline:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - now) * 1000)
            bad += response.status != 200
        connection.close()
        with lock:
            latencies.extend(mine)
            failures.append(bad)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - began), latencies, sum(failures)


def test_api_throughput_and_latency_vs_bare_flask(app, user_api, runner_server_env, tmp_path, database_url):
    run_id = bare_run(app, user_api.email)
    for start in range(0, 1000, 100):
        add_events(app, run_id, *(f"event {n}" for n in range(start, start + 100)))
    # The limiter stays on (its Redis round trips are part of the cost) with room for the load.
    env = dict(runner_server_env, RUNNER_RATELIMIT_ENABLED="true", RUNNER_RATELIMIT_DEFAULT="10000000/minute")
    env.pop("RATELIMIT_ENABLED")
    runner, runner_port, _ = start_gunicorn("runner:create_app()", env, tmp_path / "runner.log", WORKERS)
    bare, bare_port, _ = start_gunicorn("bare_app:app", env, tmp_path / "bare.log", WORKERS,
                                        cwd=os.path.dirname(__file__))
    try:
        cases = [
            ("bare Flask GET /api/health (floor)", bare_port, "/api/health", None),
            ("GET /api/health", runner_port, "/api/health", None),
            ("GET /api/runs/{run}", runner_port, f"/api/runs/{run_id}", user_api.token),
            ("GET /api/runs/{run}/events?limit=50", runner_port, f"/api/runs/{run_id}/events?limit=50", user_api.token),
        ]
        for _, port, path, token in cases:  # warm every worker and pool
            _load_once(port, path, token)
        results = [(name, *_load(port, path, token)) for name, port, path, token in cases]
    finally:
        stop(runner)
        stop(bare)

    backend = database_url.split(":", 1)[0].split("+")[0]
    floor = results[0][1]
    print(f"\n[{backend}] API on gunicorn -k gevent -w {WORKERS}, {CLIENTS} keep-alive clients, {SECONDS:g} s each")
    for name, rate, latencies, failures in results:
        print(f"  {name:40s} {rate:8,.0f} req/s ({rate / floor * 100:5.1f} % of the floor)  "
              f"p50 {pct(latencies, 50):6.2f} ms  p99 {pct(latencies, 99):6.2f} ms  (n={len(latencies)})")
    assert all(failures == 0 for *_, failures in results), [(r[0], r[3]) for r in results]


def _load_once(port, path, token):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = connection.getresponse()
    assert response.status == 200, response.read()[:500]
    response.read()
    connection.close()
