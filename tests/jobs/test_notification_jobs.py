"""Pushes of whole runs: a run driven through the HTTP API and a real RQ worker (the `command`
provider) announces its end to its owner's active devices through the APNs stand-in
(tests/apns_server.py), configured the way an admin would, through server params."""
import socket
import sys

import pytest

from apns_server import ApnsStandIn, signing_key
from gitrepo import origin_url
from helpers import add_events, assert_problem, bare_run

RUNS = "/api/runs"
DEVICES = "/api/devices"
PARAMS = "/api/settings/server-params"
KEY_ID, TEAM_ID, TOPIC = "KEY1234567", "TEAM123456", "dev.runner.app"
PHONE, IPAD, OLD, OTHER = ("a1" * 32), ("b2" * 32), ("c3" * 32), ("d4" * 32)

AGENT = r"""
import sys, pathlib
prompt = sys.argv[1]
if "fail" in prompt:
    print("giving up", file=sys.stderr, flush=True); sys.exit(3)
pathlib.Path("agent-output.txt").write_text(prompt + "\n")
print("wrote agent-output.txt", flush=True)
"""


@pytest.fixture
def config(config):
    # Retries at once: the backoff itself is checked in test_a_busy_apns_is_retried_later_not_at_once.
    config.APNS_RETRY_SECONDS = (0, 0, 0)
    return config


@pytest.fixture
def command_agent(admin_api):
    response = admin_api.put(
        "/api/settings/providers/command", json={"enabled": True, "command": [sys.executable, "-c", AGENT, "{prompt}"]}
    )
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def project(app, user_api, tmp_path, run_jobs):
    created = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": origin_url(tmp_path / "origin")})
    assert created.status_code == 202, created.get_json()
    run_jobs()
    return created.get_json()["id"]


@pytest.fixture
def apns(tmp_path, admin_api):
    """The stand-in, with the server params pointing Runner at it (as an admin would set them)."""
    private_key, public_key = signing_key()
    with ApnsStandIn(tmp_path, public_key, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC) as server:
        response = admin_api.put(PARAMS, json={
            "apns.keyId": KEY_ID, "apns.teamId": TEAM_ID, "apns.topic": TOPIC, "apns.privateKey": private_key,
            "apns.endpoint": server.url, "apns.caBundle": server.ca_path,
        })
        assert response.status_code == 200, response.get_json()
        yield server


def _register(api, token, environment="sandbox"):
    response = api.post(DEVICES, json={"token": token, "environment": environment})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _run(api, project, run_jobs, prompt="add a file"):
    draft = api.post(RUNS, json={"projectId": project, "title": "Add a file", "prompt": prompt, "selectedAgent": "command"})
    assert draft.status_code == 201, draft.get_json()
    run_id = draft.get_json()["id"]
    assert api.post(f"{RUNS}/{run_id}/start").status_code == 202
    run_jobs()
    return api.get(f"{RUNS}/{run_id}").get_json()


def _deliveries(api, run_id):
    response = api.get(f"{RUNS}/{run_id}/notifications")
    assert response.status_code == 200, response.get_json()
    return {row["deviceId"]: row for row in response.get_json()["data"]}


def _devices(api):
    return {device["token"]: device for device in api.get(DEVICES).get_json()["data"]}


def test_a_completed_run_pushes_once_to_each_active_device_of_its_owner(
    app, user_api, make_user, login, project, command_agent, apns, run_jobs
):
    phone, ipad, old = _register(user_api, PHONE, "production"), _register(user_api, IPAD), _register(user_api, OLD)
    from runner.extensions import db
    from runner.models import Device

    with app.app_context():
        db.session.get(Device, old).active = False
        db.session.commit()
    _, email = make_user()
    other = login(email)
    _register(other, OTHER)

    run = _run(user_api, project, run_jobs)

    assert run["status"] == "completed"
    assert apns.refusals == []
    assert (len(apns.to(PHONE)), len(apns.to(IPAD)), apns.to(OLD), apns.to(OTHER)) == (1, 1, [], [])
    push = apns.to(PHONE)[0]
    assert push.payload["runId"] == run["id"]
    assert push.payload["aps"]["alert"] == {"title": "demo: Ready for review", "body": "Add a file"}
    assert push.headers["apns-collapse-id"] == f"run-{run['id']}"
    assert push.headers["apns-topic"] == TOPIC and push.headers["apns-push-type"] == "alert"

    rows = _deliveries(user_api, run["id"])
    assert set(rows) == {phone, ipad}
    for device_id, token in ((phone, PHONE), (ipad, IPAD)):
        row = rows[device_id]
        assert (row["runStatus"], row["status"], row["httpStatus"], row["attempts"], row["reason"]) == (
            "completed", "sent", 200, 1, None
        )
        assert row["apnsId"] == apns.to(token)[0].apns_id

    run_jobs()  # nothing left to send: a worker that looks again sends nothing twice
    assert len(apns.requests) == 2
    assert_problem(other.get(f"{RUNS}/{run['id']}/notifications"), 404)


def test_dead_tokens_disable_their_devices_and_get_no_more_pushes(user_api, project, command_agent, apns, run_jobs):
    bad, gone, good = _register(user_api, OLD), _register(user_api, IPAD), _register(user_api, PHONE, "production")
    apns.script(OLD, (400, "BadDeviceToken"))
    apns.script(IPAD, (410, "Unregistered"))

    failed = _run(user_api, project, run_jobs, prompt="fail please")

    assert failed["status"] == "failed"
    alert = apns.to(PHONE)[0].payload["aps"]["alert"]
    assert alert["title"] == "demo: Run failed" and alert["body"].startswith("Add a file — ")
    devices = _devices(user_api)
    assert (devices[OLD]["active"], devices[OLD]["disabledReason"]) == (False, "APNs answered 400 BadDeviceToken")
    assert (devices[IPAD]["active"], devices[IPAD]["disabledReason"]) == (False, "APNs answered 410 Unregistered")
    assert (devices[PHONE]["active"], devices[PHONE]["disabledReason"]) == (True, None)
    rows = _deliveries(user_api, failed["id"])
    assert (rows[bad]["status"], rows[bad]["httpStatus"], rows[bad]["reason"]) == ("device_disabled", 400, "BadDeviceToken")
    assert (rows[gone]["status"], rows[gone]["httpStatus"], rows[gone]["reason"]) == ("device_disabled", 410, "Unregistered")
    assert rows[good]["status"] == "sent" and rows[good]["runStatus"] == "failed"

    completed = _run(user_api, project, run_jobs)
    assert set(_deliveries(user_api, completed["id"])) == {good}
    assert (len(apns.to(OLD)), len(apns.to(IPAD)), len(apns.to(PHONE))) == (1, 1, 2)


def test_429_and_5xx_are_retried_per_device_until_sent(user_api, project, command_agent, apns, run_jobs):
    busy, flaky, calm = _register(user_api, OLD), _register(user_api, IPAD), _register(user_api, PHONE)
    apns.script(OLD, 429)
    apns.script(IPAD, 500, 503)

    run = _run(user_api, project, run_jobs)

    assert (len(apns.to(OLD)), len(apns.to(IPAD)), len(apns.to(PHONE))) == (2, 3, 1)
    assert [r.status for r in apns.to(OLD)] == [429, 200]
    rows = _deliveries(user_api, run["id"])
    assert {device: (row["status"], row["attempts"], row["httpStatus"]) for device, row in rows.items()} == {
        busy: ("sent", 2, 200), flaky: ("sent", 3, 200), calm: ("sent", 1, 200)
    }
    assert rows[busy]["apnsId"] == apns.to(OLD)[-1].apns_id


def test_a_push_failure_never_changes_the_runs_status(user_api, project, command_agent, apns, run_jobs):
    device = _register(user_api, PHONE)
    apns.script(PHONE, 500, 500, 500, 500)

    run = _run(user_api, project, run_jobs)

    assert len(apns.to(PHONE)) == 4  # the first attempt and three retries
    row = _deliveries(user_api, run["id"])[device]
    assert (row["status"], row["attempts"], row["httpStatus"], row["reason"]) == ("failed", 4, 500, "InternalServerError")
    after = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert after["status"] == "completed" and after["statusDetail"] is None
    events = user_api.get(f"{RUNS}/{run['id']}/events", query_string={"limit": 200}).get_json()["data"]
    assert not [e for e in events if e["severity"] == "error"]
    assert events[-1]["eventType"] == "status_changed" and events[-1]["data"]["to"] == "completed"


def test_an_unreachable_apns_fails_the_push_not_the_run(admin_api, user_api, project, command_agent, apns, run_jobs):
    device = _register(user_api, PHONE)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    assert admin_api.put(PARAMS, json={"apns.endpoint": f"https://127.0.0.1:{closed}"}).status_code == 200

    run = _run(user_api, project, run_jobs)

    assert run["status"] == "completed"
    row = _deliveries(user_api, run["id"])[device]
    assert (row["status"], row["attempts"], row["httpStatus"]) == ("failed", 4, None)
    assert "did not answer" in row["reason"]


def test_a_busy_apns_is_retried_later_not_at_once(app, user_api, project, command_agent, apns, run_jobs, redis_conn):
    import datetime as dt

    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    app.config["APNS_RETRY_SECONDS"] = (10, 60, 300)  # the production backoff
    device = _register(user_api, PHONE)
    apns.script(PHONE, 429)

    run = _run(user_api, project, run_jobs)

    assert len(apns.to(PHONE)) == 1
    row = _deliveries(user_api, run["id"])[device]
    assert (row["status"], row["attempts"], row["httpStatus"], row["reason"]) == ("retrying", 1, 429, "TooManyRequests")
    registry = ScheduledJobRegistry(queue=Queue("default", connection=redis_conn))
    assert registry.get_job_ids() == [f"push-{row['id']}"]
    due = registry.get_scheduled_time(f"push-{row['id']}")
    wait = (due - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 5 < wait <= 10


def test_notifications_disabled_sends_nothing(admin_api, user_api, project, command_agent, apns, run_jobs):
    _register(user_api, PHONE)
    assert admin_api.put(PARAMS, json={"notifications.enabled": False}).status_code == 200

    run = _run(user_api, project, run_jobs)

    assert run["status"] == "completed"
    assert apns.requests == [] and _deliveries(user_api, run["id"]) == {}


def test_without_apns_params_a_run_ends_quietly_with_a_logged_skip(user_api, project, command_agent, run_jobs, caplog):
    _register(user_api, PHONE)
    with caplog.at_level("INFO", logger="jobs.notifications"):
        run = _run(user_api, project, run_jobs)
    assert run["status"] == "completed"
    assert _deliveries(user_api, run["id"]) == {}
    assert "APNs is not configured: set apns.keyId, apns.teamId, apns.topic, apns.privateKey" in caplog.text


def test_each_attempt_of_a_retried_run_announces_its_end_once(user_api, project, command_agent, apns, run_jobs):
    device = _register(user_api, PHONE)
    run = _run(user_api, project, run_jobs, prompt="fail please")
    assert user_api.post(f"{RUNS}/{run['id']}/retry").status_code == 202
    run_jobs()

    assert [r.payload["aps"]["alert"]["title"] for r in apns.to(PHONE)] == ["demo: Run failed"] * 2
    response = user_api.get(f"{RUNS}/{run['id']}/notifications").get_json()
    assert [(row["deviceId"], row["runStatus"], row["status"]) for row in response["data"]] == [(device, "failed", "sent")] * 2


def test_the_owners_own_cancel_is_no_news(user_api, project, command_agent, apns, run_jobs):
    _register(user_api, PHONE)
    draft = user_api.post(RUNS, json={"projectId": project, "title": "t", "prompt": "p", "selectedAgent": "command"})
    run_id = draft.get_json()["id"]
    user_api.post(f"{RUNS}/{run_id}/start")
    assert user_api.post(f"{RUNS}/{run_id}/cancel").get_json()["status"] == "cancelled"
    run_jobs()
    assert apns.requests == []


def test_an_announcement_is_queued_only_after_commit_and_only_once(app, user_api, redis_conn):
    from rq import Queue

    from runner import events, notifications
    from runner.extensions import db

    run_id = bare_run(app, user_api.email)
    queued = Queue("default", connection=redis_conn)
    with app.app_context():
        events.status_changed(run_id, "running", "completed")
        db.session.rollback()
        db.session.commit()
        assert queued.count == 0  # rolled back: nothing to announce

        events.status_changed(run_id, "running", "completed")
        events.status_changed(run_id, "running", "completed")  # staged twice in one transaction
        db.session.commit()
        assert queued.job_ids == [f"notify-{run_id}-1-completed"]
        assert notifications.announce(run_id, 1, "completed") is None  # announced already
        assert queued.count == 1


def test_redis_down_at_commit_costs_the_push_not_the_status_change(app, config, user_api, make_app, caplog):
    from runner.extensions import db
    from runner.models import Run

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    run_id = bare_run(app, user_api.email)
    config.REDIS_URL = f"redis://127.0.0.1:{closed}/0"
    without_redis = make_app(config)
    with caplog.at_level("WARNING", logger="runner.notifications"):
        add_events(without_redis, run_id, finish="completed")
    with app.app_context():
        assert db.session.get(Run, run_id).status == "completed"
    assert f"run {run_id}: could not queue the completed push: ConnectionError" in caplog.text
