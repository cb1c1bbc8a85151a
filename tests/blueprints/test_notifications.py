"""GET /api/runs/{run}/notifications: the pushes of a run, for its owner only, paginated.

The rows here are written directly (what the push job would have recorded);
tests/jobs/test_notification_jobs.py shows the job writing them for real runs."""
import pytest

from helpers import assert_problem, bare_run

TOKEN = "a1" * 32


@pytest.fixture
def run_with_pushes(app, user_api):
    """A run of the user with two pushes to their device: one sent, one retried then failed."""
    from runner.extensions import db
    from runner.models import Device, Notification, Run

    run_id = bare_run(app, user_api.email)
    with app.app_context():
        run = db.session.get(Run, run_id)
        device = Device(user_id=run.user_id, token=TOKEN, environment="sandbox")
        db.session.add(device)
        db.session.flush()
        sent = Notification(run_id=run_id, device_id=device.id, run_status="completed", status="sent",
                            apns_id="5E2A9C61-0D1F-4B6A-9C3B-3F1E4D2A7B90", http_status=200, attempts=1)
        failed = Notification(run_id=run_id, device_id=device.id, run_status="failed", status="failed",
                              http_status=500, reason="InternalServerError", attempts=4)
        db.session.add_all([sent, failed])
        db.session.commit()
        return run_id, device.id, run.project_id, run.user_id


def test_the_owner_sees_each_push_newest_first(user_api, run_with_pushes):
    run_id, device_id, *_ = run_with_pushes
    response = user_api.get(f"/api/runs/{run_id}/notifications")
    assert response.status_code == 200
    body = response.get_json()
    assert body["meta"] == {"nextCursor": None}
    newest, oldest = body["data"]
    assert set(newest) == {"id", "runId", "deviceId", "runStatus", "status", "apnsId", "httpStatus", "reason",
                           "attempts", "createdAt", "updatedAt"}
    assert (newest["runStatus"], newest["status"], newest["httpStatus"], newest["reason"], newest["attempts"]) == (
        "failed", "failed", 500, "InternalServerError", 4
    )
    assert (oldest["status"], oldest["apnsId"], oldest["httpStatus"], oldest["reason"]) == (
        "sent", "5E2A9C61-0D1F-4B6A-9C3B-3F1E4D2A7B90", 200, None
    )
    assert newest["runId"] == oldest["runId"] == run_id and newest["deviceId"] == device_id
    assert newest["createdAt"].endswith("Z")


def test_pushes_outlive_their_device_and_never_name_another(user_api, run_with_pushes):
    """Deleting a device keeps the record of what was pushed, without the device (on SQLite too,
    whose foreign keys are enforced: a new device may be given the deleted one's id)."""
    run_id, device_id, *_ = run_with_pushes
    assert user_api.delete(f"/api/devices/{device_id}").status_code == 204
    pushes = user_api.get(f"/api/runs/{run_id}/notifications").get_json()["data"]
    assert [(p["status"], p["deviceId"]) for p in pushes] == [("failed", None), ("sent", None)]
    again = user_api.post("/api/devices", json={"token": "b2" * 32, "environment": "sandbox"})
    assert again.status_code in (200, 201), again.get_json()
    assert all(p["deviceId"] is None for p in user_api.get(f"/api/runs/{run_id}/notifications").get_json()["data"])


def test_the_list_pages_with_a_cursor(user_api, run_with_pushes):
    run_id = run_with_pushes[0]
    first = user_api.get(f"/api/runs/{run_id}/notifications", query_string={"limit": 1}).get_json()
    assert [row["status"] for row in first["data"]] == ["failed"] and first["meta"]["nextCursor"]
    second = user_api.get(
        f"/api/runs/{run_id}/notifications", query_string={"limit": 1, "cursor": first["meta"]["nextCursor"]}
    ).get_json()
    assert [row["status"] for row in second["data"]] == ["sent"] and second["meta"]["nextCursor"] is None
    assert_problem(user_api.get(f"/api/runs/{run_id}/notifications", query_string={"cursor": "forged"}), 400, "invalid-cursor")


def test_other_users_and_project_members_get_404(app, make_user, login, run_with_pushes):
    from runner.extensions import db
    from runner.models import ProjectMember

    run_id, _, project_id, _ = run_with_pushes
    stranger_id, stranger_email = make_user()
    stranger = login(stranger_email)
    assert_problem(stranger.get(f"/api/runs/{run_id}/notifications"), 404, "not-found")
    with app.app_context():
        db.session.add(ProjectMember(project_id=project_id, user_id=stranger_id))
        db.session.commit()
    # A member sees the run, but its pushes went to the owner's phones.
    assert stranger.get(f"/api/runs/{run_id}").status_code == 200
    body = assert_problem(stranger.get(f"/api/runs/{run_id}/notifications"), 404, "not-found")
    assert "owner" in body["detail"]


def test_unknown_runs_tokens_and_abilities(user_api, login, anon, run_with_pushes):
    run_id = run_with_pushes[0]
    assert_problem(user_api.get("/api/runs/999999/notifications"), 404, "not-found")
    assert_problem(anon.get(f"/api/runs/{run_id}/notifications"), 401)
    narrow = login(user_api.email, abilities=["runs:start"])
    body = assert_problem(narrow.get(f"/api/runs/{run_id}/notifications"), 403)
    assert body["requiredAbility"] == "projects:read"
