"""The agent job: one run attempt from worktree to terminal status.

worktree on a fresh branch → `running` → `pre_run` snapshot → the provider's CLI in its own process
group, its output translated into agent events as it comes → `post_run` snapshot → `completed` or
`failed`. Events are committed in batches (every FLUSH_EVENTS events or FLUSH_SECONDS, whichever comes
first), so a chatty agent never waits on a commit per line; the run's workspace_files follow its file
events (at most every FILES_REFRESH_SECONDS) and its commands become command_executions. The run's
status in the database is the control channel: a watcher thread follows it and
pauses (SIGSTOP), resumes (SIGCONT) or cancels (SIGTERM, then SIGKILL) the agent's process group.
"""
import logging
import threading
import time

from flask import current_app

from jobs.providers import adapter_for
from jobs.providers.process import AgentProcess, Lines
from runner import events, logs, projects, runs, settings, states, telemetry
from runner.extensions import db
from runner.models import AgentEvent, AgentProvider, Project, Run, utcnow
from workspaces import worktrees
from workspaces.git import clean_environ

log = logging.getLogger(__name__)
CONTROL_POLL_SECONDS = 0.25
BEAT_SECONDS = 5.0  # well inside runner.runs.HEARTBEAT_SECONDS
FLUSH_EVENTS = 1000
FLUSH_SECONDS = 0.1
FLUSH_MAX_EVENTS = 10 * FLUSH_EVENTS  # one transaction's most, when the agent outruns the database
FILES_REFRESH_SECONDS = 2.0

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


def _claim_slot(run, branch):
    """`queued → running` if fewer than runs.maxConcurrent runs are running or paused: True; False
    if the run moved on meanwhile; None when every slot is taken. The count and the step happen
    under one Redis lock, so two workers cannot both take the last slot."""
    from runner.extensions import redis_client

    with redis_client.connection.lock("runner:run-slots", timeout=30, blocking_timeout=30):
        active = db.session.scalar(
            db.select(db.func.count()).select_from(Run).where(Run.status.in_(("running", "paused")))
        )
        if active >= settings.get("runs.maxConcurrent"):
            db.session.rollback()
            return None
        return _step(run, "running", branch=branch, started_at=utcnow())


def _wait_for_slot(run):
    """Try again shortly: the job is scheduled anew (the worker's scheduler queues it when due)."""
    import datetime as dt
    import uuid

    from runner import queue

    delay = current_app.config["RUN_SLOT_RETRY_SECONDS"]
    job_id = f"run-{run.id}-{run.attempt}-{uuid.uuid4().hex[:8]}"
    queue.get_queue("runs").enqueue_in(
        dt.timedelta(seconds=delay), execute_run, run.id, job_id=job_id,
        job_timeout=int(settings.get("runs.timeoutSeconds")) + 300,
    )
    limit = settings.get("runs.maxConcurrent")
    db.session.execute(
        db.update(Run)
        .where(Run.id == run.id, Run.status == "queued")
        .values(job_id=job_id, status_detail=f"waiting for a free slot (runs.maxConcurrent = {limit})")
    )
    db.session.commit()


def execute_run(run_id):
    with logs.run_context(run_id):
        _execute_run(run_id)


def _execute_run(run_id):
    run = db.session.get(Run, run_id)
    if run is None or run.status != "queued":
        return  # cancelled (or otherwise moved on) while queued
    project = db.session.get(Project, run.project_id)
    branch = worktrees.run_branch(run.id, run.attempt)
    claimed = _claim_slot(run, branch)
    if claimed is None:
        _wait_for_slot(run)
        return
    if not claimed:
        return  # cancelled meanwhile
    runs.beat(run.id)
    try:
        worktree = worktree_path(run)
        with projects.repository_lock(project.id):
            worktree.parent.mkdir(parents=True, exist_ok=True)
            # Metadata of worktrees a crash left behind would block their paths and branches.
            worktrees.prune_worktrees(projects.repo_dir(project.id))
            worktrees.create_worktree(projects.repo_dir(project.id), worktree, branch, project.default_branch)
        base = _snapshot(run, project, "pre_run", worktree)
        status, summary = _run_agent(run, worktree, base.commit_sha)
        runs.beat(run.id)
        if status == "completed" and settings.get("docs.autoUpdate"):
            _refresh_docs(run, worktree, summary)
        post = _snapshot(run, project, "post_run", worktree)
        telemetry.update_files(run.id, projects.repo_dir(project.id), base.commit_sha, post.commit_sha)
        if status == "completed" and summary and not _has_event(run.id, "summary_ready"):
            # Adapters whose CLI reports a final result emit it themselves; the others get one here.
            events.add(run.id, "summary_ready", summary[:4000])
            db.session.commit()
        _step(run, status, detail=None if status == "completed" else summary, finished_at=utcnow())
    except Exception as exc:
        log.exception("run %s failed", run_id)
        db.session.rollback()
        events.add(run.id, "error", _failure_message(exc), severity="error")
        db.session.commit()
        _step(run, "failed", detail="The run failed; see its error event.", finished_at=utcnow())


def _failure_message(exc):
    """What the run's error event says of an unexpected failure, in the user's terms."""
    import errno

    text = getattr(exc, "message", None) or str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in text:
        return (
            f"The run failed: the data directory ({current_app.config['DATA_DIR']}) is full (No space left on "
            "device). Free some space, then retry the run."
        )
    return f"The run failed: {getattr(exc, 'message', None) or type(exc).__name__}"


def _refresh_docs(run, worktree, summary):
    """The managed docs and the run's changelog entry, written in its worktree before the post_run
    snapshot so they travel with its changes on its branch (SPEC §9). They never fail a run."""
    from runner.knowledge import docs

    try:
        changed = docs.refresh_for_run(run.id, worktree, summary)
    except Exception as exc:
        log.exception("run %s: managed docs not refreshed", run.id)
        db.session.rollback()
        events.add(run.id, "log", f"The managed docs were not refreshed: {type(exc).__name__}", severity="warning")
    else:
        if changed:
            events.add(run.id, "log", f"Managed docs refreshed: {', '.join(changed)}", data={"docs": changed})
    db.session.commit()


def _has_event(run_id, event_type):
    query = db.select(AgentEvent.id).where(AgentEvent.run_id == run_id, AgentEvent.event_type == event_type)
    return db.session.scalar(query.limit(1)) is not None


def _run_agent(run, worktree, base_sha):
    provider = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == run.selected_agent))
    adapter = adapter_for(provider.kind, cwd=str(worktree))
    key_param, url_param = _CREDENTIALS.get(provider.kind, (None, None))
    base_url = settings.get(url_param) if url_param else None
    env = adapter.env(clean_environ(), api_key=settings.get(key_param) if key_param else None, base_url=base_url)
    prompt = _prompt(run)
    # codex takes its endpoint on the command line, not from the environment.
    argv = adapter.argv(provider.command, prompt, run.selected_model, run.safe_mode, base_url=base_url)
    # stdout and stderr meet in one _Output, so a quiet agent still gets its batch committed and a
    # chatty one costs the job one hand-over per batch.
    output = _Output(adapter)
    process = AgentProcess(
        argv,
        cwd=str(worktree),
        env=env,
        time_limit=settings.get("runs.timeoutSeconds"),
        on_stderr=output.put_stderr,
    )
    with process:  # whatever happens to the job, the agent does not outlive it
        runs.agent_started(run.id, process.pid)  # its own session: the group id is its pid
        events.add(run.id, "log", f"agent started: {provider.key} (pid {process.pid})", severity="debug", data={"argv0": argv[0]})
        db.session.commit()
        watcher = _Watcher(current_app._get_current_object(), run.id, process)
        watcher.start()
        reader = threading.Thread(target=_read_stdout, args=(process, output), daemon=True, name=f"run-{run.id}-stdout")
        reader.start()
        recorder = _Recorder(run.id, worktree, base_sha)
        try:
            while True:
                ended = output.wait(recorder.files_due_in())
                recorder.add(output.take(FLUSH_MAX_EVENTS))
                recorder.flush()
                if ended and not output.has_pending():
                    break
            exit_code = process.wait()
            reader.join(timeout=5)
        finally:
            watcher.stop()
            runs.agent_finished(run.id)
    recorder.add(output.take())  # stderr that came after stdout closed
    recorder.flush(final=True)
    if process.timed_out:
        return "failed", f"The agent exceeded runs.timeoutSeconds ({settings.get('runs.timeoutSeconds')} s)."
    return adapter.outcome(exit_code, recorder.seen())


def _prompt(run):
    """The run's prompt; with ragEnabled, prefixed with the best chunks of the project's index
    under rag.tokenBudget, and a `log` event saying which."""
    if not run.rag_enabled:
        return run.prompt
    from runner.knowledge import rag

    prefix, chunks = rag.rag_context(run.project_id, run.prompt)
    rag.record(run.id, chunks)
    db.session.commit()
    return prefix + run.prompt


def _read_stdout(process, output):
    """The stdout thread: raw output handed to the job as it comes (parsed there, in order)."""
    try:
        for chunk in process.chunks():
            output.put_stdout(chunk)
    finally:
        output.close()


class _Output:
    """The agent's output on its way from the reader threads to the job, in the order it came.

    The readers hand over raw stdout chunks and stderr lines and do nothing else: at thousands of
    lines a second, parsing on a reader thread would take the GIL from the job's inserts, line after
    line. The job `wait`s until a batch is due (FLUSH_EVENTS lines, or FLUSH_SECONDS after the first
    one, or stdout closed; a reader wakes it only for the first and the due one) and `take`s the
    output there is, parsed into events by the adapter on the job's own thread."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.pending, self.count, self.first_at = [], 0, None  # count: lines pending
        self.closed = False
        self.stdout = Lines()

    def put_stdout(self, chunk):
        self._put(chunk, chunk.count(b"\n"))

    def put_stderr(self, line):
        self._put(line, 1)

    def _put(self, item, lines):
        with self.lock:
            if self.first_at is None:
                self.first_at = time.monotonic()
            self.pending.append(item)
            first = len(self.pending) == 1
            before = self.count
            self.count = after = before + lines
        if first or before < FLUSH_EVENTS <= after:
            self.ready.set()

    def close(self):
        self.closed = True
        self.ready.set()

    def wait(self, timeout=None):
        """Block until a batch is due or `timeout` seconds passed (None: no limit of its own);
        True once stdout has closed (everything it produced is then pending)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.ready.clear()  # before looking: a put from now on wakes the wait below
            closed = self.closed  # read before the batch: all stdout produced before closing is in it
            with self.lock:
                due = self.count >= FLUSH_EVENTS or closed
                batch_deadline = None if self.first_at is None else self.first_at + FLUSH_SECONDS
            now = time.monotonic()
            if due or (batch_deadline is not None and now >= batch_deadline):
                return closed
            if deadline is not None and now >= deadline:
                return False
            wait_until = min((d for d in (deadline, batch_deadline) if d is not None), default=None)
            self.ready.wait(None if wait_until is None else wait_until - now)

    def has_pending(self):
        with self.lock:
            return bool(self.pending)

    def take(self, limit=None):
        """The events of the output pending, in order: of about `limit` lines at most (a batch of an
        agent chattier than the database can keep up with stays a batch, and its stream moves)."""
        with self.lock:
            if limit is None or self.count <= limit:
                taken, self.pending, self.count, self.first_at = self.pending, [], 0, None
            else:
                lines = 0
                for end, item in enumerate(self.pending, 1):
                    lines += item.count(b"\n") if isinstance(item, bytes) else 1
                    if lines >= limit:
                        break
                taken, self.pending = self.pending[:end], self.pending[end:]
                self.count -= lines
                self.first_at = time.monotonic() - FLUSH_SECONDS  # what is left is due at once
        produced = []
        parse_line, parse_stderr_line = self.adapter.parse_line, self.adapter.parse_stderr_line
        for item in taken:
            if isinstance(item, bytes):
                for line in self.stdout.feed(item):
                    produced += parse_line(line)
            else:
                produced += parse_stderr_line(item)
        if self.closed and not self.has_pending():
            for line in self.stdout.feed(b"", final=True):  # a last line without its line end
                produced += parse_line(line)
        return produced


class _Recorder:
    """Stores the agent's events: one multi-row INSERT and commit a `flush`, ids in the order of
    `add`. Commands become command_executions in the same transaction; file events mark the run's
    workspace_files for a refresh, at most every FILES_REFRESH_SECONDS and once more at the end.
    Of the events themselves it keeps only the last of each type that carries a message (what
    an adapter's `outcome` looks at), so a long, chatty run does not grow the job's memory."""

    def __init__(self, run_id, worktree, base_sha):
        self.run_id, self.worktree, self.base_sha = run_id, worktree, base_sha
        self.last = {}  # event type → its last event with a message
        self.batch = []  # events not yet inserted
        self.files_dirty = False
        self.files_refreshed_at = float("-inf")

    def add(self, produced):
        for item in produced:
            kind = item["event_type"]
            if kind in _COMMAND_EVENTS:
                telemetry.record_command(self.run_id, item)
            if kind in _FILE_CHANGING_EVENTS:
                self.files_dirty = True
            if item["message"]:
                self.last[kind] = item
        self.batch.extend(produced)

    def seen(self):
        """The events an adapter's `outcome` may look at (the last of each type), in no set order."""
        return list(self.last.values())

    def files_due_in(self):
        """Seconds until workspace_files are due for a refresh; None: nothing changed since the last."""
        if not self.files_dirty:
            return None
        return max(0.0, self.files_refreshed_at + FILES_REFRESH_SECONDS - time.monotonic())

    def flush(self, final=False):
        if self.batch:
            events.add_many(self.run_id, self.batch)
            db.session.commit()
            self.batch = []
        if self.files_dirty and (final or self.files_due_in() == 0):
            self.files_dirty, self.files_refreshed_at = False, time.monotonic()
            telemetry.update_files(self.run_id, self.worktree, self.base_sha)


_COMMAND_EVENTS = frozenset(("command_started", "command_finished"))
# A finished command may have changed files as much as an edit tool.
_FILE_CHANGING_EVENTS = frozenset(("file_created", "file_updated", "file_deleted", "command_finished"))


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
            last_beat = time.monotonic()
            # Look at once, then every CONTROL_POLL_SECONDS: a pause asked for while the run was
            # starting stops the agent as soon as it exists.
            while True:
                if time.monotonic() - last_beat >= BEAT_SECONDS:
                    runs.beat(self.run_id)  # "this run is in hand": runner reap leaves it alone
                    last_beat = time.monotonic()
                status = db.session.scalar(db.select(Run.status).where(Run.id == self.run_id))
                db.session.rollback()  # end the read transaction: see the next change
                if status == "paused" and not self.process.paused:
                    self.process.pause()
                elif status == "running" and self.process.paused:
                    self.process.resume()
                elif status == "cancelled":
                    self.process.terminate(grace)
                    return
                if self.done.wait(CONTROL_POLL_SECONDS):
                    break
            db.session.remove()
