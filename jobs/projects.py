"""Project jobs: clone, pull, index and archive a project's repository.

Each job takes the project id, holds the repository lock while it touches git, and moves the
project through its states with conditional updates: a project archived while its job waited
simply refuses the job's next step. Any failure leaves the project in `error` with git's message
(credentials scrubbed) in `statusDetail`, never stuck in `cloning`.
"""
import logging
import time

from runner import projects, states
from runner.knowledge import docs
from runner.extensions import db
from runner.models import Project
from workspaces import repository
from workspaces.git import GitError

log = logging.getLogger(__name__)
STEPS = states.PROJECT_STEPS


def _step(project_id, name, **values):
    done = states.transition(Project, project_id, STEPS[name], **values)
    db.session.commit()
    return done


def _fail(project_id, detail):
    _step(project_id, "error", status_detail=detail, progress=None)


class _Progress:
    """Writes clone progress to the project row, at most once a second."""

    def __init__(self, project_id):
        self.project_id, self.last = project_id, 0.0

    def __call__(self, phase, percent):
        now = time.monotonic()
        if now - self.last < 1.0 and percent < 100:
            return
        self.last = now
        db.session.execute(
            db.update(Project)
            .where(Project.id == self.project_id, Project.status == "cloning")
            .values(progress=percent, status_detail=f"{phase} {percent}%")
        )
        db.session.commit()


def _guarded(job):
    """Run a job body; turn any failure into the `error` state with a scrubbed message."""

    def run(project_id):
        try:
            return job(project_id)
        except GitError as exc:
            log.warning("project %s: %s failed: %s", project_id, job.__name__, exc.message)
            db.session.rollback()
            _fail(project_id, exc.message)
        except Exception:
            log.exception("project %s: %s failed", project_id, job.__name__)
            db.session.rollback()
            _fail(project_id, f"{job.__name__.replace('_', ' ')} failed unexpectedly; see the worker log.")
            raise

    run.__name__ = run.__qualname__ = job.__name__
    run.__module__ = job.__module__
    return run


def _index(project_id, changed_files=None):
    """The index step: build the code search index (only `changed_files` when given and an index
    exists), record it on the project, mark the project ready. An index that cannot be built puts
    the project in `error` saying why."""
    from jobs import knowledge
    from runner.models import utcnow

    project = db.session.get(Project, project_id)
    # The detail of the step that led here ("pulled 3 changed files") outlives the progress
    # messages; a full build has nothing to add to "ready".
    detail = project.status_detail if project is not None and changed_files is not None else None
    try:
        built = knowledge.build_project_index(project_id, changed_files)
    except (OSError, ValueError) as exc:  # the disk, or tantivy (its errors arrive as ValueError)
        log.warning("project %s: indexing failed: %s", project_id, exc)
        db.session.rollback()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        _fail(project_id, f"Could not build the search index: {reason}{where}")
        return False
    except GitError:
        raise  # _guarded reports git's own message
    except Exception:
        log.exception("project %s: indexing failed", project_id)
        db.session.rollback()
        _fail(project_id, "Could not build the search index: unexpected error; see the worker log.")
        raise
    return _step(
        project_id,
        "ready",
        progress=None,
        status_detail=detail,
        indexed_at=utcnow(),
        indexed_commit=built.commit,
        index_chunks=built.chunks,
        index_files=built.files,
    )


@_guarded
def clone_project(project_id):
    if not _step(project_id, "cloning", status_detail="waiting for the repository", progress=0):
        return  # archived (or otherwise moved on) while queued
    project = db.session.get(Project, project_id)
    with projects.repository_lock(project_id):
        dest = projects.repo_dir(project_id)
        if projects.project_dir(project_id).exists():
            # A re-clone: keep the old workspace aside rather than destroy it.
            repository.archive(projects.project_dir(project_id), projects.archive_root())
        dest.parent.mkdir(parents=True, exist_ok=True)
        with projects.git_access() as (env, secrets):
            branch = repository.clone(
                project.repository_url,
                dest,
                branch=project.default_branch,
                env=env,
                timeout=_git_timeout(),
                secrets=secrets,
                on_progress=_Progress(project_id),
            )
        head = repository.head_sha(dest)
    values = {"default_branch": branch, "head_sha": head, "status_detail": None, "progress": None}
    if _step(project_id, "indexing", **values):
        _index(project_id)


@_guarded
def pull_project(project_id):
    project = db.session.get(Project, project_id)
    if project is None or project.status != "ready":
        return
    with projects.repository_lock(project_id):
        # Auto-blocks that docs/regenerate left uncommitted must not block the fast-forward.
        docs.discard_generated(projects.repo_dir(project_id))
        with projects.git_access() as (env, secrets):
            result = repository.fast_forward(
                projects.repo_dir(project_id), project.default_branch, env=env, timeout=_git_timeout(), secrets=secrets
            )
    changed = result["changed_files"]
    detail = f"pulled {len(changed)} changed file{'s' if len(changed) != 1 else ''}"
    if _step(project_id, "indexing", head_sha=result["after"], status_detail=detail):
        _index(project_id, changed)


@_guarded
def index_project(project_id):
    _index(project_id)


@_guarded
def archive_project(project_id):
    """Move an archived project's workspace aside (the row stays; a re-clone starts afresh)."""
    with projects.repository_lock(project_id):
        directory = projects.project_dir(project_id)
        if directory.exists():
            repository.archive(directory, projects.archive_root())


def _git_timeout():
    from flask import current_app

    return current_app.config["GIT_TIMEOUT_SECONDS"]
