"""The agent job: one run attempt from worktree to terminal status.

worktree on a fresh branch → `running` → `pre_run` snapshot → the provider's CLI in its own process
group, its output translated into agent events as it comes → `post_run` snapshot → `completed` or
`failed`. The run's status in the database is the control channel: a watcher thread follows it and
pauses (SIGSTOP), resumes (SIGCONT) or cancels (SIGTERM, then SIGKILL) the agent's process group.
"""
import logging
import threading

from flask import current_app

from jobs.providers import adapter_for
from jobs.providers.process import AgentProcess
from runner import events, projects, settings, states
from runner.extensions import db
from runner.models import AgentProvider, Project, Run, utcnow
from workspaces import worktrees
from workspaces.git import clean_environ

log = logging.getLogger(__name__)
CONTROL_POLL_SECONDS = 0.25

# Which server params reach which kind of agent (and only that agent's environment).
_CREDENTIALS = {
    "claude-code": ("providers.anthropicApiKey", "providers.anthropicBaseUrl"),
    "codex": ("providers.openaiApiKey", "providers.openaiBaseUrl"),
}


def worktree_path(run):
    return projects.project_dir(run.project_id) / "worktrees" / f"run-{run.id}-{run.attempt}"


def _step(run, name, detail=None, **values):
    """Move the run through a job step with its status_changed event; False if the status refused."""
    previous = db.session.scalar(db.select(Run.status).where(Run.id == run.id))
    if not states.transition(Run, run.id, states.RUN_STEPS[name], status_detail=detail, **values):
        db.session.rollback()
        return False
    events.status_changed(run.id, previous, name, detail)
    db.session.commit()
    db.session.refresh(run)
    return True


def _snapshot(run, project, kind, worktree):
    with projects.repository_lock(project.id):
        snapshot = projects.create_snapshot(project, kind, f"{kind.replace('_', ' ')} of run {run.id}", run_id=run.id, worktree=worktree)
    events.add(
        run.id, "snapshot_created", f"{kind} snapshot {snapshot.id}",
        data={"snapshotId": snapshot.id, "kind": kind, "commitSha": snapshot.commit_sha, "fileCount": snapshot.file_count},
    )
    db.session.commit()
    return snapshot


def execute_run(run_id):
    run = db.session.get(Run, run_id)
    if run is None or run.status != "queued":
        return  # cancelled (or otherwise moved on) while queued
    project = db.session.get(Project, run.project_id)
    try:
        branch = worktrees.run_branch(run.id, run.attempt)
        worktree = worktree_path(run)
        with projects.repository_lock(project.id):
            worktree.parent.mkdir(parents=True, exist_ok=True)
            worktrees.create_worktree(projects.repo_dir(project.id), worktree, branch, project.default_branch)
        if not _step(run, "running", branch=branch, started_at=utcnow()):
            return
        _snapshot(run, project, "pre_run", worktree)
        status, summary = _run_agent(run, worktree)
        _snapshot(run, project, "post_run", worktree)
        if summary:
            events.add(run.id, "summary_ready", summary[:4000])
            db.session.commit()
        _step(run, status, detail=None if status == "completed" else summary, finished_at=utcnow())
    except Exception as exc:
        log.exception("run %s failed", run_id)
        db.session.rollback()
        events.add(run.id, "error", f"The run failed: {getattr(exc, 'message', None) or type(exc).__name__}", severity="error")
        db.session.commit()
        _step(run, "failed", detail="The run failed; see its error event.", finished_at=utcnow())


def _run_agent(run, worktree):
    provider = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == run.selected_agent))
    adapter = adapter_for(provider.kind, cwd=str(worktree))
    key_param, url_param = _CREDENTIALS.get(provider.kind, (None, None))
    base_url = settings.get(url_param) if url_param else None
    env = adapter.env(clean_environ(), api_key=settings.get(key_param) if key_param else None, base_url=base_url)
    # codex takes its endpoint on the command line, not from the environment.
    argv = adapter.argv(provider.command, run.prompt, run.selected_model, run.safe_mode, base_url=base_url)
    stderr_lines = []
    process = AgentProcess(
        argv, cwd=str(worktree), env=env, time_limit=settings.get("runs.timeoutSeconds"), on_stderr=stderr_lines.append
    )
    events.add(run.id, "log", f"agent started: {provider.key} (pid {process.pid})", severity="debug", data={"argv0": argv[0]})
    db.session.commit()
    watcher = _Watcher(current_app._get_current_object(), run.id, process)
    watcher.start()
    seen = []
    try:
        for line in process.lines():
            produced = adapter.parse_line(line) + _drain(adapter, stderr_lines)
            for item in produced:
                events.add(run.id, item["event_type"], item["message"], severity=item["severity"], path=item["path"], data=item["data"])
            seen.extend(produced)
            if produced:
                db.session.commit()
        exit_code = process.wait()
    finally:
        watcher.stop()
    for item in _drain(adapter, stderr_lines):
        events.add(run.id, item["event_type"], item["message"], severity=item["severity"], path=item["path"], data=item["data"])
        seen.append(item)
    db.session.commit()
    if process.timed_out:
        return "failed", f"The agent exceeded runs.timeoutSeconds ({settings.get('runs.timeoutSeconds')} s)."
    return adapter.outcome(exit_code, seen)


def _drain(adapter, lines):
    taken = []
    while lines:
        taken.append(lines.pop(0))
    return [item for line in taken for item in adapter.parse_stderr_line(line)]


class _Watcher(threading.Thread):
    """Follows the run's status in the database and acts on the agent's process group."""

    def __init__(self, app, run_id, process):
        super().__init__(daemon=True, name=f"run-{run_id}-watcher")
        self.app, self.run_id, self.process = app, run_id, process
        self.done = threading.Event()

    def stop(self):
        self.done.set()
        self.join(timeout=5)

    def run(self):
        with self.app.app_context():
            grace = settings.get("runs.cancelGraceSeconds")
            while not self.done.wait(CONTROL_POLL_SECONDS):
                status = db.session.scalar(db.select(Run.status).where(Run.id == self.run_id))
                db.session.rollback()  # end the read transaction: see the next change
                if status == "paused" and not self.process.paused:
                    self.process.pause()
                elif status == "running" and self.process.paused:
                    self.process.resume()
                elif status == "cancelled":
                    self.process.terminate(grace)
                    return
            db.session.remove()
