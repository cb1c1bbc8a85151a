"""Review, commit and push over HTTP, end to end: a real run (the `command` provider editing, adding
and deleting files in its worktree) on a project cloned from a bare origin over file://, approved,
committed and pushed by a real RQ worker — then the origin is inspected with git itself. And every
refusal: reviews of runs that are not completed, commits without approval or ability or changes,
pushes without ability, setting, approval or commit, and pushes the remote rejects."""
import shutil
import sys

import pytest
from rq import Queue

from gitrepo import HTTP_TOKEN, HTTP_USER, GitHttpServer, commit, git, head, make_repo
from helpers import PASSWORD, ApiClient, assert_problem

RUNS = "/api/runs"
PARAMS = "/api/settings/server-params"

# The agent: edits README.md, adds docs/new.md, deletes src/old.py and leaves an ignored log — or,
# asked to change nothing, only talks.
AGENT = r"""
import os, pathlib, sys
if "change nothing" in sys.argv[1]:
    print("looked around; nothing to change", flush=True)
    sys.exit(0)
pathlib.Path("README.md").write_text("# demo\n\nDocumented by the agent.\n")
pathlib.Path("docs").mkdir(exist_ok=True)
pathlib.Path("docs/new.md").write_text("A new page.\n")
os.remove("src/old.py")
pathlib.Path("debug.log").write_text("noise\n")
print("edited README.md, added docs/new.md, deleted src/old.py", flush=True)
"""


@pytest.fixture
def origin(tmp_path):
    """A bare origin with main: README.md, src/app.py, src/old.py, and a .gitignore of *.log."""
    seed = make_repo(
        tmp_path / "seed",
        {".gitignore": "*.log\n", "README.md": "# demo\n", "src/app.py": "print('hi')\n", "src/old.py": "old\n"},
    )
    git(tmp_path, "clone", "-q", "--bare", seed, tmp_path / "origin.git")
    return tmp_path / "origin.git"


@pytest.fixture
def project(user_api, admin_api, origin, run_jobs):
    response = admin_api.put(
        "/api/settings/providers/command", json={"enabled": True, "command": [sys.executable, "-c", AGENT, "{prompt}"]}
    )
    assert response.status_code == 200, response.get_json()
    # The commits are checked file by file: without the managed docs a completed run adds (those
    # travel with the run's branch; tested in test_runs.py).
    assert admin_api.put(PARAMS, json={"docs.autoUpdate": False}).status_code == 200
    created = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": origin.as_uri()})
    assert created.status_code == 202, created.get_json()
    run_jobs()
    project = user_api.get(f"/api/projects/{created.get_json()['id']}").get_json()
    assert project["status"] == "ready" and project["defaultBranch"] == "main", project
    return project["id"]


@pytest.fixture
def completed_run(user_api, project, run_jobs):
    """`completed_run(prompt=…)` -> the id of a run that went through the agent and completed."""

    def make(prompt="document the demo"):
        draft = user_api.post(
            RUNS, json={"projectId": project, "title": "Document the demo", "prompt": prompt, "selectedAgent": "command"}
        )
        assert draft.status_code == 201, draft.get_json()
        run_id = draft.get_json()["id"]
        assert user_api.post(f"{RUNS}/{run_id}/start").status_code == 202
        run_jobs()
        run = user_api.get(f"{RUNS}/{run_id}").get_json()
        assert run["status"] == "completed", run
        assert run["reviewStatus"] is None and run["commitSha"] is None and run["push"] is None
        return run_id

    return make


@pytest.fixture
def pusher(user_api):
    """The same user with a token elevated to git:push."""
    response = user_api.post("/api/auth/elevate", json={"password": PASSWORD, "abilities": ["git:push"]})
    assert response.status_code == 201, response.get_json()
    return ApiClient(user_api.client, response.get_json()["token"])


@pytest.fixture
def push_enabled(admin_api):
    assert admin_api.put(PARAMS, json={"safety.autoGitPush": True}).status_code == 200


def _events(api, run_id, **query):
    return api.get(f"{RUNS}/{run_id}/events", query_string={"limit": 200, **query}).get_json()["data"]


def _of(api, run_id, event_type):
    return _events(api, run_id, eventTypes=event_type)


def _worktree(app, run_id):
    from jobs.runs import worktree_path
    from runner.extensions import db
    from runner.models import Run

    with app.app_context():
        return worktree_path(db.session.get(Run, run_id))


def _repo(app, project_id):
    from runner import projects

    with app.app_context():
        return projects.repo_dir(project_id)


def _queued_jobs(redis_conn):
    return sum(Queue(name, connection=redis_conn).count for name in ("runs", "default"))


# --- the whole way ------------------------------------------------------------------------------


def test_approve_commit_push_lands_the_run_branch_on_the_origin(
    app, user_api, admin_api, pusher, push_enabled, project, completed_run, origin, run_jobs
):
    from runner import events
    from runner.extensions import db

    assert admin_api.put(PARAMS, json={"git.authorName": "Ada Reviewer", "git.authorEmail": "ada@example.com"}).status_code == 200
    run_id = completed_run()
    branch = f"runner/run-{run_id}"
    with app.app_context():  # what the claude/codex adapters leave at the end of a run
        events.add(run_id, "summary_ready", "Documented the demo and removed dead code.")
        db.session.commit()
    origin_main = head(origin, "main")

    approved = user_api.post(f"{RUNS}/{run_id}/approve", json={"notes": "Looks good.\nShip it."})
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["reviewStatus"] == "approved" and body["commit"] is None
    assert body["review"]["decision"] == "approved" and body["review"]["notes"] == "Looks good.\nShip it."
    [submitted] = _of(user_api, run_id, "review_submitted")
    assert submitted["data"] == {"decision": "approved", "reviewId": body["review"]["id"], "userId": body["review"]["userId"],
                                 "notes": "Looks good.\nShip it."}
    assert submitted["message"] == "Approved: Looks good."

    committed = user_api.post(f"{RUNS}/{run_id}/commit")
    assert committed.status_code == 200, committed.get_json()
    run = committed.get_json()
    sha = run["commitSha"]
    assert run["commit"]["sha"] == sha and run["commit"]["branch"] == branch
    assert sorted((f["path"], f["changeType"]) for f in run["commit"]["changedFiles"]) == [
        ("README.md", "modified"), ("docs/new.md", "added"), ("src/old.py", "deleted")]
    [created] = _of(user_api, run_id, "commit_created")
    assert created["data"]["sha"] == sha and created["data"]["branch"] == branch
    worktree = _worktree(app, run_id)
    assert head(worktree) == sha and git(worktree, "status", "--porcelain") == ""

    queued = pusher.post(f"{RUNS}/{run_id}/push")
    assert queued.status_code == 202, queued.get_json()
    assert queued.get_json()["jobId"].startswith(f"push-run-{run_id}-")
    assert queued.get_json()["push"]["status"] == "queued" and queued.get_json()["push"]["jobId"] == queued.get_json()["jobId"]
    run_jobs()

    done = user_api.get(f"{RUNS}/{run_id}").get_json()
    assert done["pushedSha"] == sha and done["pushedAt"]
    assert done["push"]["status"] == "pushed" and done["push"]["error"] is None
    [pushed] = _of(user_api, run_id, "pushed")
    assert pushed["data"]["branch"] == branch and pushed["data"]["sha"] == sha
    assert pushed["data"]["remote"] == origin.as_uri() and pushed["data"]["result"] == "new branch"

    # The origin, read with git: the branch holds exactly the agent's work, by the configured author,
    # with the run's title, summary and trailer; main is untouched.
    assert head(origin, branch) == sha
    assert sorted(git(origin, "ls-tree", "-r", "--name-only", branch).split()) == [
        ".gitignore", "README.md", "docs/new.md", "src/app.py"]
    assert git(origin, "show", f"{branch}:README.md") == "# demo\n\nDocumented by the agent.\n"
    assert git(origin, "show", f"{branch}:docs/new.md") == "A new page.\n"
    assert git(origin, "log", "-1", "--format=%an <%ae>|%cn <%ce>", branch) == (
        "Ada Reviewer <ada@example.com>|Ada Reviewer <ada@example.com>\n")
    assert git(origin, "log", "-1", "--format=%B", branch) == (
        f"Document the demo\n\nDocumented the demo and removed dead code.\n\nRunner-Run: {run_id}\n\n")
    assert git(origin, "log", "-1", "--format=%(trailers:key=Runner-Run,valueonly)", branch).strip() == str(run_id)
    assert git(origin, "rev-parse", f"{branch}~1").strip() == origin_main
    assert head(origin, "main") == origin_main


def test_approve_with_commit_does_both_and_names_the_changed_files(app, user_api, completed_run):
    run_id = completed_run()
    response = user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["reviewStatus"] == "approved" and body["review"]["notes"] is None
    assert body["commitSha"] == body["commit"]["sha"] == head(_worktree(app, run_id))
    # No summary_ready event from the command agent: the message lists the changed files.
    assert body["commit"]["message"] == (
        "Document the demo\n\n3 files changed: modified README.md, added docs/new.md, deleted src/old.py\n\n"
        f"Runner-Run: {run_id}\n")
    kinds = [e["eventType"] for e in _events(user_api, run_id)]
    assert kinds[-2:] == ["review_submitted", "commit_created"]


# --- reviews ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_completed_runs_can_be_reviewed(user_api, project, action):
    draft = user_api.post(RUNS, json={"projectId": project, "title": "t", "prompt": "p", "selectedAgent": "command"})
    run_id = draft.get_json()["id"]
    body = assert_problem(user_api.post(f"{RUNS}/{run_id}/{action}", json={"notes": "too early"}), 409, "run-not-reviewable")
    assert (body["runId"], body["currentStatus"], body["allowedFrom"]) == (run_id, "draft", ["completed"])
    assert user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"] == []
    assert _of(user_api, run_id, "review_submitted") == []


def test_a_later_review_replaces_the_status_and_keeps_the_history(user_api, completed_run):
    run_id = completed_run()
    first = user_api.post(f"{RUNS}/{run_id}/approve")  # no body at all: notes and commit are optional
    assert first.status_code == 200, first.get_json()
    second = user_api.post(f"{RUNS}/{run_id}/approve", json={"notes": "still fine"})
    assert second.status_code == 200
    rejected = user_api.post(f"{RUNS}/{run_id}/reject", json={"notes": "on second thought, no"})
    assert rejected.status_code == 200 and rejected.get_json()["reviewStatus"] == "rejected"

    assert user_api.get(f"{RUNS}/{run_id}").get_json()["reviewStatus"] == "rejected"
    reviews = user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"]
    assert [(r["decision"], r["notes"]) for r in reviews] == [
        ("rejected", "on second thought, no"), ("approved", "still fine"), ("approved", None)]
    assert [r["id"] for r in reviews] == [rejected.get_json()["review"]["id"], second.get_json()["review"]["id"],
                                          first.get_json()["review"]["id"]]
    assert [e["data"]["decision"] for e in _of(user_api, run_id, "review_submitted")] == ["approved", "approved", "rejected"]
    page = user_api.get(f"{RUNS}/{run_id}/reviews", query_string={"limit": 2}).get_json()
    assert len(page["data"]) == 2 and page["meta"]["nextCursor"]
    rest = user_api.get(f"{RUNS}/{run_id}/reviews", query_string={"limit": 2, "cursor": page["meta"]["nextCursor"]})
    assert [r["decision"] for r in rest.get_json()["data"]] == ["approved"]

    # Rejected: no commit any more, until approved again.
    body = assert_problem(user_api.post(f"{RUNS}/{run_id}/commit"), 409, "run-not-approved")
    assert body["reviewStatus"] == "rejected" and body["runId"] == run_id


def test_a_retried_approval_with_the_same_idempotency_key_reviews_once(user_api, completed_run):
    run_id = completed_run()
    headers = {"Idempotency-Key": "approve-once"}
    first = user_api.post(f"{RUNS}/{run_id}/approve", json={"notes": "ok"}, headers=headers)
    again = user_api.post(f"{RUNS}/{run_id}/approve", json={"notes": "ok"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert len(user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"]) == 1


def test_reviews_need_runs_control_and_other_users_runs_are_404(user_api, make_user, login, completed_run):
    run_id = completed_run()
    reader = login(user_api.email, abilities=["projects:read"])
    body = assert_problem(reader.post(f"{RUNS}/{run_id}/approve"), 403)
    assert body["requiredAbility"] == "runs:control"
    _, email = make_user()
    stranger = login(email)
    for method, suffix in (("POST", "/approve"), ("POST", "/reject"), ("POST", "/commit"), ("GET", "/reviews")):
        assert_problem(stranger.open(method, f"{RUNS}/{run_id}{suffix}"), 404)
    assert user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"] == []


# --- commit refusals ------------------------------------------------------------------------------


def test_a_commit_needs_an_approval(app, user_api, completed_run):
    run_id = completed_run()
    before = head(_worktree(app, run_id))
    body = assert_problem(user_api.post(f"{RUNS}/{run_id}/commit"), 409, "run-not-approved")
    assert body["reviewStatus"] == "pending" and "approve" in body["detail"]
    assert head(_worktree(app, run_id)) == before and _of(user_api, run_id, "commit_created") == []


def test_a_commit_needs_the_git_commit_ability_checked_before_anything(app, user_api, login, completed_run):
    run_id = completed_run()
    no_commit = login(user_api.email, abilities=["projects:*", "runs:start", "runs:control"])
    body = assert_problem(no_commit.post(f"{RUNS}/{run_id}/approve", json={"commit": True}), 403)
    assert body["requiredAbility"] == "git:commit"
    # Refused before anything happened: no review either.
    assert user_api.get(f"{RUNS}/{run_id}").get_json()["reviewStatus"] is None
    assert user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"] == []

    assert no_commit.post(f"{RUNS}/{run_id}/approve").status_code == 200  # approving alone is fine
    body = assert_problem(no_commit.post(f"{RUNS}/{run_id}/commit"), 403)
    assert body["requiredAbility"] == "git:commit"
    assert user_api.get(f"{RUNS}/{run_id}").get_json()["commitSha"] is None


def test_nothing_to_commit_is_a_409_and_no_empty_commit(app, user_api, completed_run):
    run_id = completed_run(prompt="change nothing")
    worktree = _worktree(app, run_id)
    before = head(worktree)
    assert user_api.post(f"{RUNS}/{run_id}/approve").status_code == 200
    body = assert_problem(user_api.post(f"{RUNS}/{run_id}/commit"), 409, "nothing-to-commit")
    assert body["runId"] == run_id and "no outstanding changes" in body["detail"]
    assert head(worktree) == before and user_api.get(f"{RUNS}/{run_id}").get_json()["commitSha"] is None
    # After a commit there is nothing left either.
    run_id = completed_run()
    assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
    assert_problem(user_api.post(f"{RUNS}/{run_id}/commit"), 409, "nothing-to-commit")
    assert len(_of(user_api, run_id, "commit_created")) == 1


def test_approve_with_commit_keeps_no_review_when_the_commit_fails(app, user_api, completed_run):
    run_id = completed_run(prompt="change nothing")
    assert_problem(user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True, "notes": "go"}), 409, "nothing-to-commit")
    run = user_api.get(f"{RUNS}/{run_id}").get_json()
    assert run["reviewStatus"] is None and run["commitSha"] is None
    assert user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"] == []
    assert _of(user_api, run_id, "review_submitted") == []
    # The run can still be reviewed normally afterwards.
    assert user_api.post(f"{RUNS}/{run_id}/reject").get_json()["reviewStatus"] == "rejected"


def test_a_run_whose_worktree_is_gone_cannot_be_committed(app, user_api, completed_run):
    run_id = completed_run()
    shutil.rmtree(_worktree(app, run_id))
    body = assert_problem(user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}), 409, "worktree-unavailable")
    assert f"worktree of run #{run_id} is gone" in body["detail"]
    assert user_api.get(f"{RUNS}/{run_id}/reviews").get_json()["data"] == []
    assert user_api.post(f"{RUNS}/{run_id}/approve").status_code == 200
    assert_problem(user_api.post(f"{RUNS}/{run_id}/commit"), 409, "worktree-unavailable")


# --- push refusals --------------------------------------------------------------------------------


def test_push_refusals_are_immediate_and_queue_nothing(user_api, admin_api, pusher, completed_run, origin, redis_conn):
    run_id = completed_run()
    url = f"{RUNS}/{run_id}/push"

    # The default mobile token cannot push.
    assert assert_problem(user_api.post(url), 403)["requiredAbility"] == "git:push"
    # The setting is off by default.
    body = assert_problem(pusher.post(url), 409, "git-push-disabled")
    assert "safety.autoGitPush" in body["detail"] and body["setting"] == "safety.autoGitPush"

    assert admin_api.put(PARAMS, json={"safety.autoGitPush": True}).status_code == 200
    assert assert_problem(pusher.post(url), 409, "run-not-approved")["reviewStatus"] == "pending"
    user_api.post(f"{RUNS}/{run_id}/reject")
    assert assert_problem(pusher.post(url), 409, "run-not-approved")["reviewStatus"] == "rejected"
    user_api.post(f"{RUNS}/{run_id}/approve")
    assert "commit first" in assert_problem(pusher.post(url), 409, "nothing-to-push")["detail"]

    assert _queued_jobs(redis_conn) == 0
    run = user_api.get(f"{RUNS}/{run_id}").get_json()
    assert run["push"] is None and run["pushedSha"] is None
    assert git(origin, "branch", "--list", "runner/*") == ""


def test_push_refuses_the_default_branch(app, user_api, pusher, push_enabled, completed_run, redis_conn):
    from runner.extensions import db
    from runner.models import Run

    run_id = completed_run()
    assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
    with app.app_context():  # a run somehow on the default branch (a corrupted row, an old bug)
        db.session.execute(db.update(Run).where(Run.id == run_id).values(branch="main"))
        db.session.commit()
    body = assert_problem(pusher.post(f"{RUNS}/{run_id}/push"), 409, "push-to-default-branch")
    assert "never pushes to the default branch" in body["detail"]
    assert _queued_jobs(redis_conn) == 0


def test_a_push_the_origin_rejects_is_an_error_event_with_gits_reason(
    app, user_api, admin_api, pusher, push_enabled, completed_run, origin, run_jobs, tmp_path
):
    secret = "ghp_" + "s3cret" * 6
    assert admin_api.put(PARAMS, json={"git.httpsToken": secret}).status_code == 200
    run_id = completed_run()
    branch = f"runner/run-{run_id}"
    assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
    # Someone pushed to that branch on the origin first.
    other = tmp_path / "someone-else"
    git(tmp_path, "clone", "-q", origin, other)
    git(other, "checkout", "-q", "-b", branch)
    theirs = commit(other, {"theirs.txt": "their work\n"}, "their work")
    git(other, "push", "-q", "origin", branch)

    assert pusher.post(f"{RUNS}/{run_id}/push").status_code == 202
    run_jobs()

    run = user_api.get(f"{RUNS}/{run_id}").get_json()
    assert run["pushedSha"] is None and run["push"]["status"] == "failed"
    assert "rejected (fetch first)" in run["push"]["error"]
    [error] = [e for e in _of(user_api, run_id, "error") if e["data"].get("action") == "push"]
    assert error["severity"] == "error" and error["data"]["reason"] == "rejected (fetch first)"
    assert "Updates were rejected because the remote contains work" in error["message"]
    assert _of(user_api, run_id, "pushed") == []
    assert secret not in str(_events(user_api, run_id)) and secret not in str(run)
    assert head(origin, branch) == theirs  # never forced


def test_a_push_with_wrong_credentials_reports_the_auth_failure_without_the_token(
    app, user_api, admin_api, pusher, push_enabled, project, completed_run, origin, run_jobs
):
    server = GitHttpServer(origin.parent, HTTP_USER, HTTP_TOKEN)
    try:
        # The project's remote as a private HTTPS host would have it (served over loopback HTTP).
        git(_repo(app, project), "remote", "set-url", "origin", server.url("origin.git"))
        wrong = "wrong-" + HTTP_TOKEN
        host = server.url("").split("/")[2]
        assert admin_api.put(PARAMS, json={"git.httpsToken": wrong, "git.httpsTokenHosts": f"http://{host}"}).status_code == 200
        run_id = completed_run()
        assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
        assert pusher.post(f"{RUNS}/{run_id}/push").status_code == 202
        run_jobs()
        failed = user_api.get(f"{RUNS}/{run_id}").get_json()
        assert failed["push"]["status"] == "failed" and "Authentication failed" in failed["push"]["error"]
        assert wrong not in str(_events(user_api, run_id))

        # With the right token the same push goes through; the token is nowhere to be read.
        assert admin_api.put(PARAMS, json={"git.httpsToken": HTTP_TOKEN}).status_code == 200
        assert pusher.post(f"{RUNS}/{run_id}/push").status_code == 202
        run_jobs()
        done = user_api.get(f"{RUNS}/{run_id}").get_json()
    finally:
        server.close()
    assert done["push"]["status"] == "pushed" and done["pushedSha"] == done["commitSha"]
    assert head(origin, f"runner/run-{run_id}") == done["commitSha"]
    [pushed] = _of(user_api, run_id, "pushed")
    assert pushed["data"]["remote"] == server.url("origin.git")
    assert HTTP_TOKEN not in str(_events(user_api, run_id))
    assert HTTP_TOKEN not in (_repo(app, project) / ".git" / "config").read_text()


def test_a_push_to_an_unreachable_remote_fails_with_gits_reason(app, user_api, pusher, push_enabled, project,
                                                                completed_run, run_jobs, tmp_path):
    run_id = completed_run()
    assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
    git(_repo(app, project), "remote", "set-url", "origin", (tmp_path / "gone.git").as_uri())
    assert pusher.post(f"{RUNS}/{run_id}/push").status_code == 202
    run_jobs()
    push = user_api.get(f"{RUNS}/{run_id}").get_json()["push"]
    assert push["status"] == "failed" and "does not appear to be a git repository" in push["error"]


def test_the_push_job_checks_again_when_it_runs(user_api, admin_api, pusher, push_enabled, completed_run, origin, run_jobs):
    run_id = completed_run()
    assert user_api.post(f"{RUNS}/{run_id}/approve", json={"commit": True}).status_code == 200
    assert pusher.post(f"{RUNS}/{run_id}/push").status_code == 202
    # Pushing is turned off while the job waits in the queue.
    assert admin_api.put(PARAMS, json={"safety.autoGitPush": False}).status_code == 200
    run_jobs()
    push = user_api.get(f"{RUNS}/{run_id}").get_json()["push"]
    assert push["status"] == "failed" and "Not pushed" in push["error"] and "safety.autoGitPush" in push["error"]
    assert git(origin, "branch", "--list", "runner/*") == ""
