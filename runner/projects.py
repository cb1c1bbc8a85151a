"""Projects as the domain sees them: where their workspaces live, how git reaches them, and the
operations the API and the jobs share (queueing, snapshots under the repository lock).

Layout under DATA_DIR/workspaces: `projects/<id>/repo` (the default-branch checkout),
`projects/<id>/worktrees/` (one per run attempt), `archive/` (workspaces moved aside).
"""
import contextlib
import uuid
from pathlib import Path

from flask import current_app

from runner import settings, states
from runner.errors import ApiError, Conflict
from runner.extensions import db, redis_client
from runner.models import Project, Snapshot
from workspaces import credentials, locks, snapshots


def workspace_root():
    return Path(current_app.config["DATA_DIR"]) / "workspaces"


def project_dir(project_id):
    return workspace_root() / "projects" / str(project_id)


def repo_dir(project_id):
    return project_dir(project_id) / "repo"


def archive_root():
    return workspace_root() / "archive"


@contextlib.contextmanager
def git_access():
    """(env, secrets) for git from the server params; the token only ever travels in the env, and
    only to the hosts of git.httpsTokenHosts (project URLs come from users: any other host could
    be theirs, asking for the token)."""
    token = settings.get("git.httpsToken")
    scopes = token_scopes(settings.get("git.httpsTokenHosts"))
    with credentials.git_credentials(token if scopes else None, settings.get("git.sshKeyPath"), token_scope=scopes) as access:
        yield access


def token_scopes(hosts):
    """URL prefixes for git's credential config from "github.com, http://127.0.0.1:8080": a bare
    host (or host:port) means HTTPS."""
    scopes = []
    for entry in (hosts or "").split(","):
        entry = entry.strip().rstrip("/")
        if entry:
            scopes.append(entry if "://" in entry else f"https://{entry}")
    return scopes


@contextlib.contextmanager
def repository_lock(project_id, wait=None):
    """Serialize every git operation on one project's repository, across processes and machines.

    `wait`: seconds to wait for the lock (None: wait as long as the git timeout allows).
    """
    timeout = current_app.config["GIT_TIMEOUT_SECONDS"] + 60
    with locks.repository_lock(
        redis_client.connection,
        f"runner:repository-lock:{project_id}",
        timeout=timeout,
        blocking_timeout=timeout if wait is None else wait,
    ):
        yield


@contextlib.contextmanager
def request_lock(project_id):
    """The repository lock for an API request: waits a few seconds, then answers 409."""
    try:
        with repository_lock(project_id, wait=current_app.config["REPOSITORY_LOCK_WAIT_SECONDS"]):
            yield
    except locks.LockTimeout:
        raise Conflict(
            "Another operation on this repository is in progress; retry shortly.",
            slug="project-busy",
            title="Project is busy",
            projectId=project_id,
        ) from None


def queue_job(project, func, action):
    """Enqueue `func(project.id)` after its transition was committed; record the job id.

    If the queue cannot be reached, the project goes to `error` rather than waiting forever.
    """
    from runner import queue

    job_id = f"project-{project.id}-{action}-{uuid.uuid4().hex[:12]}"
    try:
        queue.enqueue(func, project.id, job_id=job_id, timeout=current_app.config["GIT_TIMEOUT_SECONDS"] + 120)
    except Exception:
        states.transition(
            Project, project.id, states.PROJECT_STEPS["error"], status_detail=f"Could not queue the {action} job."
        )
        db.session.commit()
        raise
    db.session.execute(db.update(Project).where(Project.id == project.id).values(last_job_id=job_id))
    db.session.commit()
    db.session.refresh(project)
    return job_id


def create_snapshot(project, kind, description, *, user=None, run_id=None, worktree=None):
    """Capture `worktree` (default: the project's checkout) as a snapshot row + hidden ref.

    The caller holds the repository lock. The row is made first (its id names the ref) and only
    committed once git has written the ref, so a failure leaves neither behind.
    """
    snapshot = Snapshot(
        project_id=project.id,
        run_id=run_id,
        kind=kind,
        description=description,
        commit_sha="",
        file_count=0,
        created_by_id=user.id if user else None,
    )
    db.session.add(snapshot)
    db.session.flush()
    try:
        captured = snapshots.create_snapshot(
            worktree or repo_dir(project.id),
            snapshot.ref,
            f"runner snapshot {snapshot.id} ({kind}): {description}".strip(),
            author=(settings.get("git.authorName"), settings.get("git.authorEmail")),
        )
    except Exception:
        db.session.rollback()
        raise
    snapshot.commit_sha = captured["commit_sha"]
    snapshot.file_count = captured["file_count"]
    db.session.commit()
    return snapshot


def require_snapshot_commit(snapshot):
    """409 when the snapshot's commit is gone (the repository was re-cloned since)."""
    repo = repo_dir(snapshot.project_id)
    if not snapshots.has_commit(repo, snapshot.commit_sha):
        raise ApiError(
            f"Snapshot {snapshot.id} was taken in a checkout that has since been replaced.",
            status=409,
            slug="snapshot-unavailable",
            title="Snapshot is no longer available",
            snapshotId=snapshot.id,
        )
