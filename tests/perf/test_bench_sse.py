"""Benchmark: SSE delivery on the real server (run with -m perf -s).

Starts gunicorn with BENCH_SSE_WORKERS (2, as `runner up`) gevent workers on this test's database and Redis, opens STREAMS event streams
on one run over raw sockets (one selector thread reads them all), then commits events one at a time
and measures, at every client, commit→receipt latency: from just before the event's INSERT (flush)
+ COMMIT (whose after-commit hook publishes the wake-up) to the frame read off the socket. Next to it,
a raw Redis pub/sub round trip measured in the same run, and the worker's RSS before/after opening
the idle streams. Prints figures; asserts only that every client got every event.
Issue goals: p50 ≤ 5 ms, p99 ≤ 25 ms, ≤ 100 KB per idle stream.
"""
import os
import selectors
import socket
import statistics
import threading
import time

import pytest

from serving import REDIS_URL, pct as _pct, rss_kb as _rss_kb, start_gunicorn, stop
from helpers import bare_run

pytestmark = pytest.mark.perf
STREAMS = int(os.environ.get("BENCH_SSE_STREAMS", 200))
WORKERS = int(os.environ.get("BENCH_SSE_WORKERS", 2))  # as runner up
EVENTS = int(os.environ.get("BENCH_SSE_EVENTS", 50))
REDIS_SAMPLES = 500


@pytest.fixture
def server(app, runner_server_env, tmp_path):
    process, port, workers = start_gunicorn("runner:create_app()", runner_server_env, tmp_path / "gunicorn.log", WORKERS)
    try:
        yield port, workers
    finally:
        stop(process)


def _open(port, token, run_id):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(
        f"GET /api/runs/{run_id}/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Accept: text/event-stream\r\n\r\n".encode()
    )
    data = b""
    while b"retry: 3000" not in data:  # headers, then the first frame
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:300]
    sock.setblocking(False)
    return sock


class _Readers(threading.Thread):
    """Reads every stream; records (event id -> receipt times) as frames arrive."""

    def __init__(self, socks):
        super().__init__(daemon=True)
        self.selector = selectors.DefaultSelector()
        for sock in socks:
            self.selector.register(sock, selectors.EVENT_READ, data=bytearray())
        self.received = {}  # id -> [perf_counter at receipt]
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            ready = self.selector.select(timeout=0.1)
            # Every socket select() reports had its data by now: one receipt time for all of them,
            # so this reader's own parsing of the others is not counted as delivery time.
            now = time.perf_counter()
            for key, _ in ready:
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.selector.unregister(key.fileobj)
                    continue
                buffer = key.data
                buffer += chunk
                while b"\n\n" in buffer:
                    block, _, rest = bytes(buffer).partition(b"\n\n")
                    buffer[:] = rest
                    # chunked transfer framing may sit in front of the frame: look for the id line
                    for line in block.split(b"\n"):
                        if line.startswith(b"id: "):
                            with self.lock:
                                self.received.setdefault(int(line[4:]), []).append(now)


def _redis_round_trips(n):
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench:rt")
    while pubsub.get_message(timeout=0.1) is not None:
        pass
    times = []
    for _ in range(n):
        start = time.perf_counter()
        connection.publish("bench:rt", "1")
        message = None
        while message is None:
            message = pubsub.get_message(timeout=1)
        times.append((time.perf_counter() - start) * 1000)
    pubsub.close()
    connection.close()
    return times


def test_sse_latency_and_memory_with_many_streams(app, user_api, server, database_url):
    from runner import events
    from runner.extensions import db

    port, workers = server
    run_id = bare_run(app, user_api.email)
    token = user_api.token

    # Warm the workers (imports, pools) with a stream each (likely), then let them go.
    warm = [_open(port, token, run_id) for _ in range(2 * WORKERS)]
    time.sleep(0.3)
    for sock in warm:
        sock.close()
    time.sleep(0.5)
    rss_before = sum(_rss_kb(worker) for worker in workers)
    opened_at = time.perf_counter()
    socks = [_open(port, token, run_id) for _ in range(STREAMS)]
    open_seconds = time.perf_counter() - opened_at
    readers = _Readers(socks)
    readers.start()
    time.sleep(2)  # every stream has replayed the one stored event and is waiting
    rss_after = sum(_rss_kb(worker) for worker in workers)

    latencies, after_commit, commit_ms, slowest_client = [], [], [], []
    missing = 0
    with app.app_context():
        for n in range(EVENTS):
            start = time.perf_counter()
            event = events.add(run_id, "log", f"bench {n}")
            db.session.flush()
            event_id = event.id
            before_commit = time.perf_counter()
            db.session.commit()
            committed = time.perf_counter()
            commit_ms.append((committed - start) * 1000)
            deadline = time.monotonic() + 10
            while True:
                with readers.lock:
                    got = list(readers.received.get(event_id, ()))
                if len(got) >= STREAMS or time.monotonic() > deadline:
                    break
                time.sleep(0.0005)
            missing += STREAMS - len(got)
            latencies += [(t - start) * 1000 for t in got]
            after_commit += [(t - committed) * 1000 for t in got]
            if got:
                slowest_client.append((max(got) - start) * 1000)
            del before_commit
            time.sleep(0.05)  # let the worker settle: one event at a time
    readers.stop.set()
    readers.join(5)
    for sock in socks:
        sock.close()

    redis_rt = _redis_round_trips(REDIS_SAMPLES)
    backend = database_url.split(":", 1)[0].split("+")[0]
    per_stream_kb = (rss_after - rss_before) / STREAMS
    print(f"\n[{backend}] SSE on gunicorn -k gevent -w {WORKERS}: {STREAMS} streams on one run, {EVENTS} events committed one at a time")
    print(f"  opening {STREAMS} streams: {open_seconds:.2f} s ({open_seconds / STREAMS * 1000:.1f} ms each)")
    print(f"  commit→receipt (flush+commit+publish → frame read), all clients: "
          f"p50 {_pct(latencies, 50):.2f} ms  p90 {_pct(latencies, 90):.2f} ms  p99 {_pct(latencies, 99):.2f} ms  "
          f"max {max(latencies):.2f} ms  (n={len(latencies)}, missing {missing})")
    print(f"  after commit() returned → receipt: p50 {_pct(after_commit, 50):.2f} ms  p99 {_pct(after_commit, 99):.2f} ms")
    print(f"  the event's flush+commit itself: median {statistics.median(commit_ms):.2f} ms")
    print(f"  last of {STREAMS} clients per event: median {statistics.median(slowest_client):.2f} ms  max {max(slowest_client):.2f} ms")
    print(f"  raw Redis pub/sub round trip (publish → get_message, same run): "
          f"p50 {_pct(redis_rt, 50):.3f} ms  p99 {_pct(redis_rt, 99):.3f} ms")
    print(f"  workers' RSS: {rss_before} KB idle → {rss_after} KB with {STREAMS} idle streams: "
          f"{per_stream_kb:.1f} KB per stream")
    print("  goals: p50 ≤ 5 ms, p99 ≤ 25 ms, ≤ 100 KB per stream")
    assert missing == 0
