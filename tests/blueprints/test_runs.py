"""Runs over HTTP: drafts, the state machine, the agent job with the `command` provider on a real
worktree, live pause/resume/cancel of the agent process, retry, and the events backfill."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from gitrepo import git, head, origin_url, process_alive
from helpers import ApiClient, assert_problem, wait_for, worker_env

RUNS = "/api/runs"

# The agent: writes a file named by the prompt in its worktree, says so, and exits 0 — or, with
# "slow" in the prompt, keeps printing a counter until stopped.
AGENT = r"""
import sys, time, pathlib
prompt = sys.argv[1]
if "slow" in prompt:
    n = 0
    while True:
        print(f"tick {n}", flush=True); n += 1; time.sleep(0.05)
if "chatty" in prompt:  # as fast as it can, stderr notes in between, and no line end at the end
    for i in range(3000):
        print(f"line {i}")
        if i % 1000 == 0:
            print(f"note {i}", file=sys.stderr, flush=True)
    sys.stdout.write("the end")
    sys.exit(0)
if "fail" in prompt:
    print("giving up", file=sys.stderr, flush=True); sys.exit(3)
pathlib.Path("agent-output.txt").write_text(prompt + "\n")
print(f"wrote agent-output.txt for: {prompt}", flush=True)
"""


@pytest.fixture
def command_agent(admin_api):
    response = admin_api.put(
        "/api/settings/providers/command",
        json={"enabled": True, "command": [sys.executable, "-c", AGENT, "{prompt}"]},
    )
    assert response.status_code == 200, response.get_json()


@pytest.fixture
def project(app, user_api, tmp_path, run_jobs):
    url = origin_url(tmp_path / "origin")
    created = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": url}).get_json()
    run_jobs()
    return created["id"]


def _draft(api, project_id, prompt="add a file", **body):
    response = api.post(
        RUNS, json={"projectId": project_id, "title": "Add a file", "prompt": prompt, "selectedAgent": "command", **body}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _events(api, run_id, **query):
    return api.get(f"{RUNS}/{run_id}/events", query_string={"limit": 200, **query}).get_json()["data"]


def _repo(app, project_id):
    from runner import projects

    with app.app_context():
        return projects.repo_dir(project_id)


def test_a_run_goes_from_draft_to_completed_on_its_own_branch(app, user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project)
    assert run["status"] == "draft" and run["attempt"] == 1 and run["branch"] is None
    repo = _repo(app, project)
    main_head = head(repo)

    started = user_api.post(f"{RUNS}/{run['id']}/start")
    assert started.status_code == 202
    assert started.get_json()["status"] == "queued" and started.get_json()["jobId"].startswith(f"run-{run['id']}-1-")
    run_jobs()

    done = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert done["status"] == "completed", done
    assert done["branch"] == f"runner/run-{run['id']}"
    assert done["startedAt"] and done["finishedAt"]
    timeline = done["timeline"]
    assert timeline["eventCounts"]["snapshot_created"] == 2 and timeline["runningMs"] >= 0

    events = _events(user_api, run["id"])
    changes = [(e["data"]["from"], e["data"]["to"]) for e in events if e["eventType"] == "status_changed"]
    assert changes == [(None, "draft"), ("draft", "queued"), ("queued", "running"), ("running", "completed")]
    assert [e["data"]["kind"] for e in events if e["eventType"] == "snapshot_created"] == ["pre_run", "post_run"]
    assert any(e["eventType"] == "log" and "wrote agent-output.txt" in e["message"] for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # The agent worked in the run's worktree; the project's checkout did not move.
    from jobs.runs import worktree_path
    from runner.extensions import db
    from runner.models import Run

    with app.app_context():
        worktree = worktree_path(db.session.get(Run, run["id"]))
    assert (worktree / "agent-output.txt").read_text() == "add a file\n"
    assert not (repo / "agent-output.txt").exists() and head(repo) == main_head
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == done["branch"]


def test_a_failing_agent_fails_the_run_with_its_stderr(user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project, prompt="fail please")
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    failed = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert failed["status"] == "failed" and "3" in failed["statusDetail"]
    warnings = _events(user_api, run["id"], severity="warning")
    assert any("giving up" in e["message"] for e in warnings)


def test_retry_runs_again_on_a_new_branch(user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project, prompt="fail please")
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    retried = user_api.post(f"{RUNS}/{run['id']}/retry")
    assert retried.status_code == 202
    assert retried.get_json()["attempt"] == 2 and retried.get_json()["status"] == "queued"
    run_jobs()
    again = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert again["branch"] == f"runner/run-{run['id']}-2" and again["status"] == "failed"


@pytest.mark.parametrize(
    "action, slug, allowed",
    [
        ("pause", "run-not-pausable", ["running"]),
        ("resume", "run-not-resumable", ["paused"]),
        ("retry", "run-not-retryable", ["failed", "cancelled"]),
    ],
)
def test_illegal_transitions_are_409_problems(user_api, project, command_agent, action, slug, allowed):
    run = _draft(user_api, project)
    body = assert_problem(user_api.post(f"{RUNS}/{run['id']}/{action}"), 409, slug)
    assert (body["runId"], body["currentStatus"], body["allowedFrom"]) == (run["id"], "draft", allowed)


def test_a_cancelled_queued_run_never_runs(user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project)
    user_api.post(f"{RUNS}/{run['id']}/start")
    cancelled = user_api.post(f"{RUNS}/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    run_jobs()
    after = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert after["status"] == "cancelled" and after["startedAt"] is None
    assert_problem(user_api.post(f"{RUNS}/{run['id']}/cancel"), 409, "run-not-cancellable")
    assert_problem(user_api.post(f"{RUNS}/{run['id']}/start"), 409, "run-not-startable")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"selectedAgent": "nobody"}, "selectedAgent"),
        ({"selectedAgent": "claude-code", "selectedModel": "gpt-99"}, "selectedModel"),
        ({"projectId": 999999}, "projectId"),
        ({"title": ""}, "title"),
        ({"safeMode": "yes"}, "safeMode"),
    ],
)
def test_drafts_are_validated(user_api, project, command_agent, body, field):
    payload = {"projectId": project, "title": "t", "prompt": "p", "selectedAgent": "command", **body}
    assert field in assert_problem(user_api.post(RUNS, json=payload), 422)["errors"]


def test_a_draft_needs_a_ready_project_the_user_can_see(user_api, make_user, login, project, tmp_path, command_agent):
    pending = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": origin_url(tmp_path / "o2")}).get_json()
    payload = {"projectId": pending["id"], "title": "t", "prompt": "p", "selectedAgent": "command"}
    assert "pending" in assert_problem(user_api.post(RUNS, json=payload), 422)["errors"]["projectId"][0]
    _, email = make_user()
    stranger = login(email)
    assert "projectId" in assert_problem(stranger.post(RUNS, json={**payload, "projectId": project}), 422)["errors"]


def test_other_users_runs_are_404_and_lists_are_scoped(user_api, make_user, login, project, command_agent):
    run = _draft(user_api, project)
    _, email = make_user()
    stranger = login(email)
    for method, suffix in (("GET", ""), ("POST", "/start"), ("POST", "/cancel"), ("GET", "/events")):
        assert_problem(stranger.open(method, f"{RUNS}/{run['id']}{suffix}"), 404)
    assert stranger.get(RUNS).get_json()["data"] == []
    listed = user_api.get(RUNS, query_string={"projectId": project, "status": "draft"}).get_json()["data"]
    assert [r["id"] for r in listed] == [run["id"]]
    assert user_api.get(RUNS, query_string={"status": "running"}).get_json()["data"] == []


def test_start_is_limited_to_6_a_minute(user_api, project, command_agent):
    drafts = [_draft(user_api, project)["id"] for _ in range(7)]
    statuses = [user_api.post(f"{RUNS}/{run_id}/start").status_code for run_id in drafts]
    assert statuses[:6] == [202] * 6
    assert statuses[6] == 429


def test_fifty_concurrent_starts_give_one_202_and_one_job(config, user_api, project, command_agent, redis_conn, make_app):
    run = _draft(user_api, project)
    # Without the 6/min start limit, which would answer most of the 50 with 429 first.
    config.RATELIMIT_ENABLED = False
    unlimited = make_app(config)
    statuses = []

    def start():
        client = ApiClient(unlimited.test_client(), user_api.token)
        statuses.append(client.post(f"{RUNS}/{run['id']}/start").status_code)

    threads = [threading.Thread(target=start) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] + [409] * 49
    from rq import Queue

    assert Queue("runs", connection=redis_conn).count == 1


def test_events_backfill_filters(user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project)
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    everything = _events(user_api, run["id"])
    snapshots = _events(user_api, run["id"], eventTypes="snapshot_created")
    assert len(snapshots) == 2 and all(e["eventType"] == "snapshot_created" for e in snapshots)
    after = _events(user_api, run["id"], since=everything[2]["id"])
    assert [e["id"] for e in after] == [e["id"] for e in everything[3:]]
    debug_and_up = _events(user_api, run["id"], severity="debug")
    assert len(debug_and_up) == len(everything)
    assert all(e["severity"] in ("info", "warning", "error") for e in _events(user_api, run["id"], severity="info"))
    assert "eventTypes" in assert_problem(
        user_api.get(f"{RUNS}/{run['id']}/events", query_string={"eventTypes": "nope"}), 422
    )["errors"]


def test_every_line_of_a_chatty_agent_becomes_one_event_in_order(user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project, prompt="be chatty")
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    assert user_api.get(f"{RUNS}/{run['id']}").get_json()["status"] == "completed"
    logs, since = [], 0
    while page := _events(user_api, run["id"], eventTypes="log", since=since):
        logs += page
        since = page[-1]["id"]
    said = [e["message"] for e in logs if e["severity"] == "info"]
    assert said == [f"line {i}" for i in range(3000)] + ["the end"]
    assert [e["message"] for e in logs if e["severity"] == "warning"] == ["note 0", "note 1000", "note 2000"]
    assert [e["id"] for e in logs] == sorted(e["id"] for e in logs)


def test_pause_resume_and_cancel_act_on_the_live_agent(config, user_api, project, command_agent):
    run = _draft(user_api, project, prompt="slow ticking")
    user_api.post(f"{RUNS}/{run['id']}/start")
    env = worker_env(config)
    worker = subprocess.Popen(
        [sys.executable, "-m", "runner", "worker", "--burst", "--queues", "runs"], env=env, stderr=subprocess.PIPE
    )
    try:
        def ticks():
            return [e for e in _events(user_api, run["id"], eventTypes="log") if e["message"].startswith("tick")]

        wait_for(lambda: len(ticks()) >= 3)
        assert user_api.post(f"{RUNS}/{run['id']}/pause").get_json()["status"] == "paused"
        time.sleep(1.0)  # the watcher stops the group within its poll interval
        frozen = len(ticks())
        time.sleep(1.0)
        assert len(ticks()) == frozen  # stopped: no output at all while paused

        assert user_api.post(f"{RUNS}/{run['id']}/resume").get_json()["status"] == "running"
        wait_for(lambda: len(ticks()) > frozen + 3)

        assert user_api.post(f"{RUNS}/{run['id']}/cancel").get_json()["status"] == "cancelled"
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr.decode()
    finally:
        if worker.poll() is None:
            worker.kill()
    final = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert final["status"] == "cancelled" and final["finishedAt"]
    # The agent is gone: nothing is still printing ticks.
    count = len(ticks())
    time.sleep(0.5)
    assert len(ticks()) == count


def test_a_run_whose_worker_is_killed_is_reaped_failed_and_can_be_retried(app, config, user_api, project, command_agent):
    from runner import runs
    from runner.extensions import redis_client

    run = _draft(user_api, project, prompt="slow ticking")
    user_api.post(f"{RUNS}/{run['id']}/start")
    env = worker_env(config)
    worker = subprocess.Popen(
        [sys.executable, "-m", "runner", "worker", "--burst", "--queues", "runs"],
        env=env, stderr=subprocess.DEVNULL, start_new_session=True,
    )

    def ticks():
        return [e for e in _events(user_api, run["id"], eventTypes="log") if e["message"].startswith("tick")]

    wait_for(lambda: len(ticks()) >= 3)
    # The worker and its work horse (in its own process group, same session), mid-run.
    from runner.supervisor import _kill_session

    _kill_session(worker.pid)
    worker.wait()
    with app.app_context():
        agent = json.loads(redis_client.connection.get(runs.AGENT_KEY.format(run_id=run["id"])))
        horse = json.loads(redis_client.connection.get(runs.HEARTBEAT_KEY.format(run_id=run["id"])))["pid"]
    # SIGKILL takes effect once the work horse leaves the kernel (a commit's fsync, say).
    assert wait_for(lambda: not process_alive(horse), timeout=10)
    os.kill(agent["pgid"], 0)  # the agent outlived its worker: an orphan still ticking
    with app.app_context():
        # Its heartbeat has not expired yet, but it names a process of this machine that is gone.
        assert redis_client.connection.exists(runs.HEARTBEAT_KEY.format(run_id=run["id"]))
        assert runs.reap_lost_runs() == [run["id"]]
    lost = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert lost["status"] == "failed" and lost["statusDetail"] == "Lost: its worker stopped."
    assert any(e["eventType"] == "error" for e in _events(user_api, run["id"], severity="error"))
    # The orphaned agent was stopped.
    wait_for(lambda: not process_alive(agent["pgid"]))
    assert user_api.post(f"{RUNS}/{run['id']}/retry").status_code == 202


def test_runs_beyond_max_concurrent_wait_for_a_free_slot(app, admin_api, user_api, project, command_agent, run_jobs):
    from runner.extensions import db
    from runner.models import Run

    assert admin_api.put("/api/settings/server-params", json={"runs.maxConcurrent": 1}).status_code == 200
    app.config["RUN_SLOT_RETRY_SECONDS"] = 1
    busy = _draft(user_api, project, prompt="already running elsewhere")
    with app.app_context():  # another worker holds the only slot
        db.session.execute(db.update(Run).where(Run.id == busy["id"]).values(status="running"))
        db.session.commit()
    run = _draft(user_api, project)
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    waiting = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert waiting["status"] == "queued" and "waiting for a free slot" in waiting["statusDetail"]

    with app.app_context():  # the slot frees up
        db.session.execute(db.update(Run).where(Run.id == busy["id"]).values(status="completed"))
        db.session.commit()
    time.sleep(1.2)  # the retry is due
    run_jobs()
    assert user_api.get(f"{RUNS}/{run['id']}").get_json()["status"] == "completed"


def _run_worker(config):
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "worker", "--burst", "--queues", "runs"],
        env=worker_env(config), stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("attempt", range(3))  # the pause lands at a different point each time
def test_a_pause_during_start_holds_or_completes_the_run_never_strands_it(config, user_api, project, command_agent, attempt):
    """Paused the moment it is running (the worktree, the pre_run snapshot and the agent's start
    are still under way): the agent is stopped as soon as it exists, or — if it already finished —
    the run completes anyway; resuming a held run completes it. Never a run paused or running with
    no agent behind it."""
    run = _draft(user_api, project, prompt=f"quick {attempt}")
    assert user_api.post(f"{RUNS}/{run['id']}/start").status_code == 202
    worker = _run_worker(config)
    try:
        def running():
            response = user_api.post(f"{RUNS}/{run['id']}/pause")
            return response.status_code == 200 or response.get_json()["currentStatus"] not in ("queued",)

        wait_for(running, timeout=60)
        paused = user_api.get(f"{RUNS}/{run['id']}").get_json()
        if paused["status"] == "paused":
            time.sleep(1.0)  # whatever the job was doing, it got to the agent by now
            status = user_api.get(f"{RUNS}/{run['id']}").get_json()["status"]
            assert status in ("paused", "completed")
            if status == "paused":
                assert worker.poll() is None  # the job holds the stopped agent
                assert user_api.post(f"{RUNS}/{run['id']}/resume").get_json()["status"] == "running"
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr.decode()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    final = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert final["status"] == "completed", final
    files = user_api.get(f"{RUNS}/{run['id']}/files").get_json()["data"]
    assert "agent-output.txt" in [f["path"] for f in files]


# Stops on SIGTERM, saying so: shows that a paused (SIGSTOPped) agent still gets to act on a cancel.
POLITE_AGENT = r"""
import signal, sys, time
def stop(*_):
    print("stopping on SIGTERM", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
n = 0
while True:
    print(f"tick {n}", flush=True); n += 1; time.sleep(0.05)
"""


def test_a_cancel_during_pause_lets_the_stopped_agent_end_gracefully(config, admin_api, user_api, project):
    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", POLITE_AGENT]}).status_code == 200
    # A long grace: were the stopped agent unable to act on SIGTERM, only SIGKILL would end it.
    assert admin_api.put("/api/settings/server-params", json={"runs.cancelGraceSeconds": 120}).status_code == 200
    run = _draft(user_api, project, prompt="tick")
    user_api.post(f"{RUNS}/{run['id']}/start")
    worker = _run_worker(config)
    try:
        def ticks():
            return [e for e in _events(user_api, run["id"], eventTypes="log") if e["message"].startswith("tick")]

        wait_for(lambda: len(ticks()) >= 3)
        assert user_api.post(f"{RUNS}/{run['id']}/pause").get_json()["status"] == "paused"
        time.sleep(1.0)
        frozen = len(ticks())
        time.sleep(0.5)
        assert len(ticks()) == frozen  # stopped
        assert user_api.post(f"{RUNS}/{run['id']}/cancel").get_json()["status"] == "cancelled"
        _, stderr = worker.communicate(timeout=60)  # well inside the 120 s grace
        assert worker.returncode == 0, stderr.decode()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    final = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert final["status"] == "cancelled"  # not completed, though the agent exited 0
    messages = [e["message"] for e in _events(user_api, run["id"], eventTypes="log")]
    assert "stopping on SIGTERM" in messages


def test_a_completed_run_carries_its_managed_docs_and_changelog_entry_on_its_branch(app, user_api, project, command_agent, run_jobs):
    run = _draft(user_api, project, prompt="add the docs")
    user_api.post(f"{RUNS}/{run['id']}/start")
    run_jobs()
    done = user_api.get(f"{RUNS}/{run['id']}").get_json()
    assert done["status"] == "completed", done
    files = {f["path"]: f["changeType"] for f in user_api.get(f"{RUNS}/{run['id']}/files").get_json()["data"]}
    assert files == {
        "agent-output.txt": "added",
        "CHANGELOG_AI.md": "added",
        "docs/ai/PROJECT_MAP.md": "added",
        "docs/ai/DATABASE_SCHEMA.md": "added",
        "docs/ai/ARCHITECTURE_DIAGRAMS.md": "added",
    }
    summary = user_api.get(f"{RUNS}/{run['id']}/summary").get_json()
    assert {d["path"] for d in summary["docs"]} >= {"CHANGELOG_AI.md", "docs/ai/PROJECT_MAP.md"}, summary["docs"]
    with app.app_context():
        from jobs.runs import worktree_path
        from runner.extensions import db
        from runner.models import Run

        worktree = worktree_path(db.session.get(Run, run["id"]))
    changelog = (worktree / "CHANGELOG_AI.md").read_text()
    assert f"run={run['id']}" in changelog and "Add a file" in changelog and "agent-output.txt" in changelog
    assert "agent-output.txt" in (worktree / "docs/ai/PROJECT_MAP.md").read_text()
    assert any(e["message"].startswith("Managed docs refreshed") for e in _events(user_api, run["id"], eventTypes="log"))
