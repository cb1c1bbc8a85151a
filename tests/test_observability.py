"""Observability: Prometheus metrics at /metrics (admins only) and request ids on every answer and
in the structured logs."""
import json
import logging
import threading

from prometheus_client.parser import text_string_to_metric_families

from helpers import ApiClient, add_events, assert_problem, bare_run, wait_for


def _scrape(api):
    response = api.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_are_for_administrators_only(anon, user_api, admin_api):
    assert_problem(anon.get("/metrics"), 401)
    assert_problem(user_api.get("/metrics"), 403)
    assert admin_api.get("/metrics").status_code == 200


def test_metrics_report_requests_runs_events_queues_and_streams(app, admin_api, user_api):
    from runner import queue
    from runner.extensions import db
    from runner.models import AgentEvent

    for _ in range(3):
        assert admin_api.get("/api/health").status_code == 200
    assert admin_api.get("/api/runs/2147483000").status_code == 404
    run_id = bare_run(app, user_api.email)
    add_events(app, run_id, "one", "two")
    with app.app_context():
        queue.get_queue("default").enqueue("os.getpid")
        newest = db.session.scalar(db.select(db.func.max(AgentEvent.id)))

    samples = _scrape(admin_api)
    health = ("runner_http_request_duration_seconds_count",
              (("method", "GET"), ("route", "/api/health"), ("status", "200")))
    assert samples[health] >= 3
    missing = ("runner_http_request_duration_seconds_count",
               (("method", "GET"), ("route", "/api/runs/<id:run_id>"), ("status", "404")))
    assert samples[missing] >= 1  # by route template, not by raw path
    assert samples[("runner_runs", (("status", "draft"),))] == 1
    assert samples[("runner_runs", (("status", "running"),))] == 0
    assert samples[("runner_agent_events_total", ())] == newest
    assert samples[("runner_queue_jobs", (("queue", "default"),))] == 1
    assert samples[("runner_event_streams_open", ())] == 0

    # An open stream is counted while it is open.
    opened, close = threading.Event(), threading.Event()

    def watch():
        client = ApiClient(app.test_client(), user_api.token)
        response = client.get(f"/api/runs/{run_id}/events/stream", buffered=False)
        next(iter(response.response))
        opened.set()
        close.wait(10)
        response.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert opened.wait(10)
    assert _scrape(admin_api)[("runner_event_streams_open", ())] == 1
    close.set()
    watcher.join(10)
    wait_for(lambda: _scrape(admin_api)[("runner_event_streams_open", ())] == 0)


def test_every_answer_carries_a_request_id(anon):
    given = anon.get("/api/health", headers={"X-Request-ID": "ios-7f3a.42"})
    assert given.headers["X-Request-ID"] == "ios-7f3a.42"
    made = anon.get("/api/health")
    assert len(made.headers["X-Request-ID"]) == 32
    # Not a sane token (here: an attempt to forge a second log field): replaced, never echoed.
    forged = anon.get("/api/health", headers={"X-Request-ID": 'x", "level": "critical'})
    assert forged.headers["X-Request-ID"] != 'x", "level": "critical' and len(forged.headers["X-Request-ID"]) == 32
    # Problems too.
    assert assert_problem(anon.get("/api/runs"), 401) and anon.get("/api/runs").headers["X-Request-ID"]


def test_json_logs_carry_the_request_and_run_ids(app):
    from runner import logs

    formatter = logs.JsonFormatter()

    def line(message):
        record = logging.LogRecord("runner.test", logging.WARNING, __file__, 1, message, (), None)
        return json.loads(formatter.format(record))

    with app.test_request_context("/api/health", headers={"X-Request-ID": "req-1"}):
        app.preprocess_request()
        with logs.run_context(7):
            entry = line('a "quoted" message\nwith a newline')
    assert entry["message"] == 'a "quoted" message\nwith a newline'  # one JSON line, whatever the text
    assert (entry["level"], entry["logger"], entry["requestId"], entry["runId"]) == ("warning", "runner.test", "req-1", 7)
    assert (entry["method"], entry["path"]) == ("GET", "/api/health")
    outside = line("no request")
    assert "requestId" not in outside and "runId" not in outside
