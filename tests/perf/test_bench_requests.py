"""Benchmark: what Runner's request pipeline costs over bare Flask and raw Redis (run with -m perf -s).

Prints figures; asserts nothing about speed. Baselines are measured in the same run: a bare Flask
endpoint through the same test client, and a raw Redis round trip.
"""
import time

import pytest
from flask import Flask

pytestmark = pytest.mark.perf
N = 300


def _per_request_ms(call, n=N):
    call()  # warm up
    statuses = set()
    start = time.perf_counter()
    for _ in range(n):
        result = call()
        statuses.add(getattr(result, "status_code", 200))
    elapsed = (time.perf_counter() - start) * 1000 / n
    assert statuses <= {200, 201}, statuses  # timing refusals (a 429) would flatter the figures
    return elapsed


def test_request_pipeline_overhead(config, make_app, make_user, redis_conn, database_url):
    from helpers import PASSWORD, ApiClient

    # The limiter stays on (its Redis round trips are part of the cost), just out of the way.
    config.RATELIMIT_DEFAULT = "1000000/minute"
    app = make_app(config)
    _, email = make_user()
    client = app.test_client()
    token = client.post("/api/auth/token", json={"email": email, "password": PASSWORD, "deviceName": "bench"})
    assert token.status_code == 201, token.get_json()
    user_api = ApiClient(client, token.get_json()["token"])
    bare = Flask("bare")
    bare.add_url_rule("/ping", "ping", lambda: {"status": "ok"})
    bare_client = bare.test_client()
    counter = iter(range(10**9))

    figures = {
        "raw redis INCR round trip": _per_request_ms(lambda: redis_conn.incr("bench")),
        "bare Flask GET /ping": _per_request_ms(lambda: bare_client.get("/ping")),
        "GET /api/health (public, not limited)": _per_request_ms(lambda: user_api.get("/api/health")),
        "GET /api/auth/me (token + limiter)": _per_request_ms(lambda: user_api.get("/api/auth/me")),
        "GET /api/devices (token + limiter + page)": _per_request_ms(lambda: user_api.get("/api/devices")),
        "POST /api/devices + Idempotency-Key": _per_request_ms(
            lambda: user_api.post(
                "/api/devices",
                json={"token": "cd" * 32, "environment": "sandbox"},
                headers={"Idempotency-Key": f"bench-{next(counter)}"},
            )
        ),
    }
    backend = database_url.split(":", 1)[0]
    print(f"\n[{backend}] mean per request over {N} requests:")
    for name, ms in figures.items():
        print(f"  {name:45s} {ms:7.3f} ms")
    assert all(ms > 0 for ms in figures.values())
