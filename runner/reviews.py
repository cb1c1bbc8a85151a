"""Review, commit and push of a finished run (SPEC §6): what may happen when, in which order, and what
it leaves behind — `run_reviews` rows, the run's review/commit/push columns, and agent events.

- A review (approve or reject) applies to completed runs only (the `review` action of the run state
  machine); the run's `review_status` is the latest decision, every review stays as a row.
- A commit needs the latest review to be an approval; it commits the run's worktree on its branch
  under the project's repository lock. `approve {commit: true}` does both in one database
  transaction, so a failed commit leaves no review behind.
- A push needs `safety.autoGitPush`, an approval and a commit; what can be known to fail is refused
  at once (409), the rest runs as an RQ job (`jobs.git.push_run`) that reports through events: a
  `log` event when queued, then `pushed` or `error`, each with `data.action = "push"`.
"""
import logging
import uuid

from flask import current_app

from runner import events, projects, settings, states
from runner.errors import Conflict
from runner.extensions import db
from runner.models import AgentEvent, Project, Run, RunReview, utcnow
from workspaces import commits
from workspaces.git import GitError, NotARepository

log = logging.getLogger(__name__)

APPROVED, REJECTED = "approved", "rejected"
PUSH_SETTING = "safety.autoGitPush"
TRAILER = "Runner-Run"


def latest_summary(run_id):
    """The text of the run's last summary_ready event, or None."""
    query = (
        db.select(AgentEvent.message)
        .where(AgentEvent.run_id == run_id, AgentEvent.event_type == "summary_ready")
        .order_by(AgentEvent.id.desc())
        .limit(1)
    )
    return db.session.scalar(query)


# --- review ------------------------------------------------------------------------------------


def submit_review(run, user, decision, notes=None, *, commit=False):
    """Record a review of the completed `run` (409 `run-not-reviewable` otherwise); with `commit`
    (approvals only), commit the worktree in the same transaction. Returns (run, review, commit
    result or None); nothing is kept when any step fails."""
    if not commit:
        return _review(run, user, decision, notes)
    with projects.request_lock(run.project_id):
        return _review(run, user, decision, notes, commit=True)


def _review(run, user, decision, notes, commit=False):
    staged = {}

    def stage(previous_status):
        review = RunReview(run_id=run.id, user_id=user.id, decision=decision, notes=notes)
        db.session.add(review)
        db.session.flush()
        headline = "Approved" if decision == APPROVED else "Rejected"
        first_line = (notes or "").strip().splitlines()[:1]
        events.add(
            run.id,
            "review_submitted",
            headline + (f": {first_line[0][:200]}" if first_line else ""),
            data={"decision": decision, "reviewId": review.id, "userId": user.id, "notes": notes},
        )
        staged["review"] = review
        if commit:
            staged["commit"] = _commit_staged(run)

    try:
        states.require(
            Run, run, "review", {"review_status": decision}, actions=states.RUN_ACTIONS, before_commit=stage
        )
    except Exception:
        # A failed commit after the review was staged: the review goes too.
        db.session.rollback()
        raise
    return run, staged["review"], staged.get("commit")


def reviews_query(run):
    return db.select(RunReview).where(RunReview.run_id == run.id)


# --- commit ------------------------------------------------------------------------------------


def _not_approved(run, action):
    current = run.review_status or "pending"
    return Conflict(
        f"Run #{run.id} is {'not reviewed yet' if current == 'pending' else current}; {action} needs an "
        f"approved review (POST /api/runs/{run.id}/approve).",
        slug="run-not-approved",
        title="Run is not approved",
        runId=run.id,
        reviewStatus=current,
    )


def commit_run(run):
    """Commit the approved run's worktree on its branch (409 when not approved, nothing to
    commit, or no worktree). Returns (run, commit result)."""
    if run.review_status != APPROVED:
        raise _not_approved(run, "a commit")
    with projects.request_lock(run.project_id):
        # Re-check and take the run's row lock in one statement: a reject racing this commit
        # either lands first (and this is refused) or waits until the commit is recorded.
        still_approved = db.session.execute(
            db.update(Run)
            .where(Run.id == run.id, Run.review_status == APPROVED)
            .values(review_status=APPROVED)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not still_approved:
            db.session.rollback()
            db.session.refresh(run)
            raise _not_approved(run, "a commit")
        try:
            result = _commit_staged(run)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    db.session.refresh(run)
    return run, result


def _commit_staged(run):
    """git-commit the run's worktree (the caller holds the repository lock) and stage commit_sha
    and the commit_created event in the session; the caller commits. ApiError 409 on failure."""
    from jobs.runs import worktree_path

    worktree = worktree_path(run)
    if not run.branch or not worktree.is_dir():
        raise _worktree_gone(run)
    author = (settings.get("git.authorName") or "Runner", settings.get("git.authorEmail") or "runner@localhost")
    try:
        result = commits.commit_worktree(
            worktree, run.branch, run.title, latest_summary(run.id), [(TRAILER, run.id)], author=author
        )
    except commits.NothingToCommit as exc:
        raise Conflict(
            f"{exc.message} Run #{run.id} has no outstanding changes.",
            slug="nothing-to-commit",
            title="Nothing to commit",
            runId=run.id,
        ) from None
    except NotARepository:
        raise _worktree_gone(run) from None
    except GitError as exc:
        raise Conflict(exc.message, slug="commit-failed", title="The commit failed", runId=run.id) from None
    db.session.execute(
        db.update(Run).where(Run.id == run.id).values(commit_sha=result["sha"]).execution_options(synchronize_session=False)
    )
    events.add(
        run.id,
        "commit_created",
        f"Committed {result['sha'][:12]} on {run.branch}: {len(result['changes'])} file"
        f"{'s' if len(result['changes']) != 1 else ''} changed",
        data={
            "sha": result["sha"],
            "parent": result["parent"],
            "branch": run.branch,
            "filesChanged": len(result["changes"]),
            "message": result["message"],
        },
    )
    return result


def _worktree_gone(run):
    return Conflict(
        f"The worktree of run #{run.id} is gone (cleaned up, its project archived or re-cloned, or the "
        "run never got one): there is nothing to commit from.",
        slug="worktree-unavailable",
        title="The run's worktree is not available",
        runId=run.id,
    )


# --- push --------------------------------------------------------------------------------------


def push_refusal(run, project):
    """The 409 a push of `run` would end in, known without asking the remote; None when it may go."""
    if not settings.get(PUSH_SETTING):
        return Conflict(
            f"Pushing is turned off on this server: an administrator must set the server param "
            f"{PUSH_SETTING} to true (PUT /api/settings/server-params).",
            slug="git-push-disabled",
            title="Pushing is disabled",
            runId=run.id,
            setting=PUSH_SETTING,
        )
    if run.review_status != APPROVED:
        return _not_approved(run, "a push")
    if not run.commit_sha:
        return Conflict(
            f"Run #{run.id} has no commit to push yet: POST /api/runs/{run.id}/commit first.",
            slug="nothing-to-push",
            title="Nothing to push",
            runId=run.id,
        )
    if not run.branch or run.branch == project.default_branch:
        return Conflict(
            f"Run #{run.id} is on {run.branch or 'no branch'}: Runner never pushes to the default branch.",
            slug="push-to-default-branch",
            title="Refusing to push to the default branch",
            runId=run.id,
            branch=run.branch,
        )
    if project.status == "archived":
        return Conflict(
            f"Project #{project.id} is archived: its repository is no longer checked out.",
            slug="project-archived",
            title="Project is archived",
            runId=run.id,
            projectId=project.id,
        )
    return None


def queue_push(run):
    """Refuse at once what must fail, else queue the push job; returns the job id.

    The `queued` event is committed before the job is queued, so the job's own event is always
    the later one."""
    from jobs.git import push_run
    from runner import queue

    project = db.session.get(Project, run.project_id)
    refusal = push_refusal(run, project)
    if refusal is not None:
        raise refusal
    job_id = f"push-run-{run.id}-{uuid.uuid4().hex[:12]}"
    data = {"action": "push", "state": "queued", "jobId": job_id, "branch": run.branch, "sha": run.commit_sha}
    events.add(run.id, "log", f"Push of {run.branch} ({run.commit_sha[:12]}) queued", data=data)
    db.session.commit()
    try:
        queue.enqueue(push_run, run.id, job_id=job_id, timeout=current_app.config["GIT_TIMEOUT_SECONDS"] + 120)
    except Exception:
        _push_failed(run.id, "The push could not be queued; retry shortly.", {**data, "reason": "not queued"})
        raise
    return job_id


def execute_push(run_id, job_id=None):
    """The push job's body: check again (things change while a job waits), then push the run's
    commit to its branch on the project's origin, never forced. The outcome is an event."""
    run = db.session.get(Run, run_id)
    if run is None:
        return None
    project_id = run.project_id
    with projects.repository_lock(project_id):
        # Read under the lock: a commit that landed while this job waited is the one to push.
        db.session.refresh(run)
        project = db.session.get(Project, project_id)
        db.session.refresh(project)
        branch, sha = run.branch, run.commit_sha
        data = {"action": "push", "jobId": job_id, "branch": branch, "sha": sha}
        refusal = push_refusal(run, project)
        if refusal is not None:
            return _push_failed(run_id, f"Not pushed: {refusal.detail}", {**data, "reason": refusal.slug})
        protected = tuple(filter(None, (project.default_branch,)))
        db.session.rollback()  # no transaction left open while the network is slow
        try:
            with projects.git_access() as (env, secrets):
                result = commits.push_commit(
                    projects.repo_dir(project_id),
                    sha,
                    branch,
                    protected=protected,
                    env=env,
                    timeout=current_app.config["GIT_TIMEOUT_SECONDS"],
                    secrets=secrets,
                )
        except GitError as exc:
            # exc.message is git's own explanation, every credential already scrubbed.
            log.warning("run %s: push failed: %s", run_id, exc.message)
            return _push_failed(run_id, f"Push of {branch} failed: {exc.message}", {**data, "reason": getattr(exc, "reason", None)})
        db.session.execute(
            db.update(Run)
            .where(Run.id == run_id)
            .values(pushed_sha=sha, pushed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        events.add(
            run_id,
            "pushed",
            f"Pushed {sha[:12]} to {branch} on {result['remote']} ({result['result']})",
            data={**data, "state": "pushed", "remote": result["remote"], "result": result["result"]},
        )
        db.session.commit()
    return "pushed"


def _push_failed(run_id, message, data):
    db.session.rollback()
    events.add(run_id, "error", message, severity="error", data={**data, "state": "failed"})
    db.session.commit()
    return "failed"


def push_failed_unexpectedly(run_id, job_id=None):
    """For the job wrapper: a push that raised (lost lock, database trouble) still ends in an event."""
    _push_failed(
        run_id,
        "The push failed unexpectedly; see the worker log.",
        {"action": "push", "jobId": job_id, "reason": "unexpected"},
    )


def push_state(run):
    """The latest push of `run` as the events tell it: {status: queued | pushed | failed, job_id,
    sha, error, at}, or None when it was never pushed."""
    event = db.session.scalar(
        db.select(AgentEvent)
        .where(
            AgentEvent.run_id == run.id,
            AgentEvent.event_type.in_(("log", "pushed", "error")),
            AgentEvent.data["action"].as_string() == "push",
        )
        .order_by(AgentEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return None
    data = event.data or {}
    status = data.get("state") or ("pushed" if event.event_type == "pushed" else "failed")
    return {
        "status": status,
        "job_id": data.get("jobId"),
        "sha": data.get("sha"),
        "error": event.message if status == "failed" else None,
        "event_id": event.id,
        "at": event.created_at,
    }
