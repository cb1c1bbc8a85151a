"""Runs as the domain sees them: drafts checked against projects and providers, visibility,
transitions with their status_changed events, queueing, and the timeline summary."""
import json
import os
import signal
import socket
import uuid

from runner import events, policies, states
from runner.errors import NotFound, ValidationFailed
from runner.extensions import db
from runner.models import AgentEvent, AgentProvider, Project, Run, utcnow


def visible_runs(query, user=None):
    """Runs of the projects the user may see (see runner.policies.visible_projects)."""
    return query.where(Run.project_id.in_(policies.visible_projects(db.select(Project.id), user)))


def run_or_404(run_id, user=None):
    run = db.session.scalar(visible_runs(db.select(Run).where(Run.id == run_id), user))
    if run is None:
        raise NotFound(f"No run {run_id} is visible to you.")
    return run


def create_draft(user, args):
    """A draft run, after checking the project (ready, visible), the agent (an enabled provider)
    and the model (one the provider lists, when it lists any). 422 naming each bad field."""
    errors = {}
    project = db.session.scalar(
        policies.visible_projects(db.select(Project).where(Project.id == args["project_id"]), user)
    )
    if project is None:
        errors["projectId"] = [f"No project {args['project_id']} is visible to you."]
    elif project.status != "ready":
        errors["projectId"] = [f"Project {project.id} is {project.status}; runs need a ready project."]
    provider = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == args["selected_agent"]))
    if provider is None or not provider.enabled:
        enabled = db.session.scalars(db.select(AgentProvider.key).where(AgentProvider.enabled)).all()
        errors["selectedAgent"] = [f"Not an enabled provider; enabled: {', '.join(enabled) or 'none'}."]
    elif provider.models and args.get("selected_model") not in provider.models:
        errors["selectedModel"] = [f"{provider.key} offers: {', '.join(provider.models)}."]
    if errors:
        raise ValidationFailed(errors)
    run = Run(user_id=user.id, status="draft", **args)
    db.session.add(run)
    db.session.flush()
    events.add(run.id, "status_changed", "created as a draft", data={"from": None, "to": "draft"})
    db.session.commit()
    return run


def apply(run, action, values=None, detail=None):
    """The API action `action` on `run`, with its status_changed event in the same transaction."""
    return states.require(
        Run,
        run,
        action,
        values,
        actions=states.RUN_ACTIONS,
        before_commit=lambda previous: events.status_changed(
            run.id, previous, states.RUN_ACTIONS[action].to, detail
        ),
    )


def queue_run(run):
    """Enqueue the agent job of a run that was just moved to `queued`; return the job id."""
    from jobs.runs import execute_run
    from runner import queue

    job_id = f"run-{run.id}-{run.attempt}-{uuid.uuid4().hex[:8]}"
    timeout = int(_setting("runs.timeoutSeconds")) + 300
    try:
        queue.enqueue(execute_run, run.id, job_id=job_id, queue="runs", timeout=timeout)
    except Exception:
        if states.transition(Run, run.id, states.RUN_STEPS["failed"], status_detail="Could not queue the run."):
            events.status_changed(run.id, "queued", "failed", "could not queue the run")
        db.session.commit()
        raise
    db.session.execute(db.update(Run).where(Run.id == run.id).values(job_id=job_id))
    db.session.commit()
    db.session.refresh(run)
    return job_id


def _setting(key):
    from runner import settings

    return settings.get(key)


def timeline(run):
    """Counts by event type, the last event, and how long the run waited and ran."""
    counts = dict(
        db.session.execute(
            db.select(AgentEvent.event_type, db.func.count()).where(AgentEvent.run_id == run.id).group_by(AgentEvent.event_type)
        ).all()
    )
    last = db.session.scalar(
        db.select(AgentEvent).where(AgentEvent.run_id == run.id).order_by(AgentEvent.id.desc()).limit(1)
    )
    now = utcnow()
    queued_ms = running_ms = None
    if run.started_at:
        queued_ms = int((run.started_at - run.created_at).total_seconds() * 1000)
        running_ms = int(((run.finished_at or now) - run.started_at).total_seconds() * 1000)
    return {
        "event_counts": counts,
        "last_event_id": last.id if last else None,
        "last_event_at": last.created_at if last else None,
        "queued_ms": queued_ms,
        "running_ms": running_ms,
    }


def event_query(run, args):
    """The backfill filters of GET /runs/{run}/events."""
    query = db.select(AgentEvent).where(AgentEvent.run_id == run.id)
    if args.get("since") is not None:
        query = query.where(AgentEvent.id > args["since"])
    if args.get("event_types"):
        query = query.where(AgentEvent.event_type.in_(args["event_types"].split(",")))
    if args.get("severity"):
        query = query.where(AgentEvent.severity.in_(events.SEVERITIES[events.SEVERITIES.index(args["severity"]):]))
    if args.get("path"):
        prefix = args["path"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AgentEvent.path.like(prefix + "%", escape="\\"))
    return query


# --- lost runs --------------------------------------------------------------------------------

HEARTBEAT_KEY = "runner:run-heartbeat:{run_id}"
AGENT_KEY = "runner:run-agent:{run_id}"
# A run job refreshes its heartbeat every few seconds; one silent this long has lost its worker.
HEARTBEAT_SECONDS = 30


def beat(run_id):
    """Called by the run job while it works: "this run is in hand", and by which process (so a
    reaper on the same machine need not wait for the heartbeat to expire to see that it died)."""
    from runner.extensions import redis_client

    value = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": _process_start(os.getpid())})
    redis_client.connection.set(HEARTBEAT_KEY.format(run_id=run_id), value, ex=HEARTBEAT_SECONDS)


def _process_start(pid):
    """The process's start time (Linux: /proc), telling a reused pid apart; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _holder_alive(raw):
    """Whether the process a heartbeat names still runs; True when it cannot be told from here
    (another machine, an old-style heartbeat)."""
    try:
        holder = json.loads(raw)
    except ValueError:
        return True
    if not isinstance(holder, dict) or holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return True
    if holder.get("started") is None:
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return _process_start(int(holder["pid"])) == holder["started"]


def agent_started(run_id, pgid):
    """Remember where the agent's process group lives, so a reaper can stop an orphaned agent."""
    from runner.extensions import redis_client

    value = json.dumps({"host": socket.gethostname(), "pgid": pgid})
    redis_client.connection.set(AGENT_KEY.format(run_id=run_id), value, ex=7 * 86400)


def agent_finished(run_id):
    from runner.extensions import redis_client

    redis_client.connection.delete(AGENT_KEY.format(run_id=run_id))


def _stop_orphaned_agent(connection, run_id):
    """Kill the agent of a lost run if it runs on this machine (its job died, it may not have)."""
    raw = connection.get(AGENT_KEY.format(run_id=run_id))
    connection.delete(AGENT_KEY.format(run_id=run_id))
    if not raw:
        return
    agent = json.loads(raw)
    if agent.get("host") == socket.gethostname() and agent.get("pgid"):
        try:
            os.killpg(int(agent["pgid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def reap_lost_runs():
    """Fail runs whose job is gone: queued with no job left in Redis, or running/paused with no
    heartbeat from a worker, or whose heartbeat names a process of this machine that is gone.
    Returns the ids failed. Safe to run anywhere, any number of times."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from runner.extensions import redis_client

    connection = redis_client.connection
    now = utcnow()
    lost = []
    candidates = db.session.scalars(db.select(Run).where(Run.status.in_(("queued", "running", "paused"))))
    for run in candidates:
        if run.status == "queued":
            try:
                job_status = Job.fetch(run.job_id, connection=connection).get_status() if run.job_id else None
            except NoSuchJobError:
                job_status = None
            if job_status in ("queued", "scheduled", "deferred", "started"):
                continue
            reason = "its job is no longer queued"
        else:
            heartbeat = connection.get(HEARTBEAT_KEY.format(run_id=run.id))
            if heartbeat is not None and _holder_alive(heartbeat):
                continue
            if heartbeat is None and run.started_at and (now - run.started_at).total_seconds() < HEARTBEAT_SECONDS:
                continue
            reason = "its worker stopped" + (" (no heartbeat)" if heartbeat is None else "")
        previous = run.status
        if states.transition(Run, run.id, states.RUN_STEPS["failed"], status_detail=f"Lost: {reason}.", finished_at=now):
            events.add(run.id, "error", f"The run was lost: {reason}. Retry it to run it again.", severity="error")
            events.status_changed(run.id, previous, "failed", "lost")
            lost.append(run.id)
            _stop_orphaned_agent(connection, run.id)
        db.session.commit()
    return lost
