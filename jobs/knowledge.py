"""Knowledge jobs: building a project's code search index (the `indexing` step of the project
pipeline runs it, see `jobs.projects._index`)."""
import logging
import time

from flask import current_app

from runner import projects
from runner.extensions import db, redis_client
from runner.knowledge import files, index
from runner.models import Project
from workspaces import locks, repository

log = logging.getLogger(__name__)


def build_project_index(project_id, changed_files=None):
    """Build the project's search index from its checkout and return `index.Stats`.

    `changed_files` None: a full build, renamed over the old index when complete. A list: only
    those paths (and any others changed since the indexed commit) are re-indexed in place; without
    a usable index, or when the indexed commit is unknown to the repository, a full build instead.
    Progress goes to the project row while its status is `indexing`.
    """
    path = index.project_index_path(project_id)
    repo = projects.repo_dir(project_id)
    progress = _Progress(project_id)
    # Two builds of one index at once would each rename or rewrite it; the repository lock is held
    # only while the checkout is read, so runs and pulls are not kept waiting by the writing.
    hold = current_app.config["GIT_TIMEOUT_SECONDS"] + 60
    with locks.repository_lock(
        redis_client.connection, f"runner:index-lock:{project_id}", timeout=hold, blocking_timeout=hold
    ):
        with projects.repository_lock(project_id):
            commit = repository.head_sha(repo)
            paths = _paths_to_update(repo, path, changed_files)
            if paths is None:
                sources = _read(repo, files.repository_files(repo))
            else:
                found = (files.repo_file(repo, changed) for changed in paths)
                sources = _read(repo, [repo_file for repo_file in found if repo_file is not None])
        if paths is None:
            return index.build(path, sources, commit=commit, on_progress=progress)
        return index.update(path, sources, paths, commit=commit, on_progress=progress)


def _paths_to_update(repo, path, changed_files):
    """The paths an incremental update must re-index, or None for a full build."""
    if changed_files is None:
        return None
    try:
        indexed_commit = index.stats(path).commit
    except index.IndexMissing:
        return None
    since = files.changed_since(repo, indexed_commit)
    if since is None:
        return None
    return sorted({*changed_files, *since})


def _read(repo, repo_files):
    sources = []
    for repo_file in repo_files:
        try:
            sources.append((repo_file, files.read_text(repo, repo_file.path)))
        except OSError as exc:  # removed or made unreadable between listing and reading
            log.info("index: skipping %s: %s", repo_file.path, exc.strerror)
    return sources


class _Progress:
    """Writes indexing progress to the project row, at most once a second."""

    def __init__(self, project_id):
        self.project_id, self.last = project_id, 0.0

    def __call__(self, done, total):
        now = time.monotonic()
        if now - self.last < 1.0 and done < total:
            return
        self.last = now
        db.session.execute(
            db.update(Project)
            .where(Project.id == self.project_id, Project.status == "indexing")
            .values(progress=done * 100 // max(total, 1), status_detail=f"indexing {done}/{total} files")
        )
        db.session.commit()


def regenerate_docs(project_id):
    """Regenerate the managed docs' auto-blocks in the project's checkout of its default branch
    (POST /api/projects/{project}/docs/regenerate); returns the paths that changed.

    A project that is no longer readable (archived or re-cloning since the request) is skipped. A
    failure fails the job only: the project itself stays as it is.
    """
    from runner.knowledge import docs

    project = db.session.get(Project, project_id)
    if project is None or project.status not in ("indexing", "ready"):
        log.info("docs: project %s is %s; nothing regenerated", project_id, project and project.status)
        return []
    changed = docs.regenerate_project(project_id)
    log.info("docs: project %s: regenerated %s", project_id, ", ".join(changed) or "nothing (already current)")
    return changed
