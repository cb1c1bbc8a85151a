"""Prometheus metrics at /metrics: request latency by route, runs by status, queue depth, open
event streams and agent events recorded.

Request latency is measured in each serving process. Under `runner up` (several gunicorn workers)
PROMETHEUS_MULTIPROC_DIR points at a folder the supervisor empties at start, and a scrape sums
every worker's figures. The rest is read when scraped, from the database and Redis, so it is the
same whichever process answers: runs by status, jobs waiting per queue, stream slots held, and the
highest agent event id (ids are never reused, so it counts events recorded and `rate()` of it is
the ingestion rate).

/metrics needs an administrator's token (any ability): run counts and queue depths are not public.
"""
import os
import time

from flask import Response, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from runner import events, queue
from runner.extensions import db, redis_client
from runner.models import AgentEvent, Run

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Buckets for API answers: mostly milliseconds, SSE streams excluded (they last minutes).
REQUEST_SECONDS = Histogram(
    "runner_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ("route", "method", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class _StateCollector:
    """Figures read at scrape time from the database and Redis."""

    def collect(self):
        runs = GaugeMetricFamily("runner_runs", "Runs by status.", labels=("status",))
        counts = dict(db.session.execute(db.select(Run.status, db.func.count()).group_by(Run.status)).all())
        from runner.states import RUN_STATUSES

        for status in RUN_STATUSES:
            runs.add_metric((status,), counts.get(status, 0))
        yield runs

        recorded = db.session.scalar(db.select(db.func.max(AgentEvent.id))) or 0
        db.session.remove()
        yield CounterMetricFamily(
            "runner_agent_events", "Agent events recorded (the highest event id; ids are never reused).",
            value=recorded,
        )

        depth = GaugeMetricFamily("runner_queue_jobs", "Jobs waiting in each RQ queue.", labels=("queue",))
        for name in queue.QUEUES:
            depth.add_metric((name,), queue.get_queue(name).count)
        yield depth

        connection = redis_client.connection
        fresh_since = time.time() - events.STREAM_SLOT_SECONDS
        pattern = events.STREAM_LIMIT_KEY.format(user_id="*")
        open_streams = sum(connection.zcount(key, fresh_since, "+inf") for key in connection.scan_iter(pattern))
        yield GaugeMetricFamily("runner_event_streams_open", "SSE event streams open, over all processes.",
                                value=open_streams)


def init_app(app):
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _start_timer():
    g.runner_request_started = time.perf_counter()


def _observe(response):
    started = g.get("runner_request_started")
    if started is not None and not response.is_streamed:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_SECONDS.labels(route, request.method, str(response.status_code)).observe(time.perf_counter() - started)
    return response


def _metrics():
    from runner import auth, policies

    auth.current_token()
    policies.require_admin()
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(_StateCollector())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)
