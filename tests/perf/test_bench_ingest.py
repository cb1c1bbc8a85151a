"""Benchmark: agent-event ingestion (run with -m perf -s).

A synthetic agent (the `command` provider running a Python one-liner) prints LINES lines as fast as
it can; the real job (RQ worker, in this process) turns each into a `log` event. Measured: events/s
persisted from the agent's start (its `agent started` event, committed just before the job reads
its first line; the agent's own start-up counts against us) to the commit of its last line (the
Redis publish that follows each commit, as an event stream sees it), and over the job's whole wall
time (worktree, snapshots and all); next to the floor, a raw batched INSERT of the same number of
rows into agent_events in the same database. Prints figures; asserts only that every line became
an event. Issue goals: ≥ 5,000 events/s and ≥ 50 % of the floor.
"""
import datetime as dt
import gc
import os
import statistics
import subprocess
import sys
import time

import pytest

from gitrepo import origin_url

pytestmark = pytest.mark.perf
LINES = int(os.environ.get("BENCH_INGEST_LINES", 20_000))
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", 5))
BATCH = 1000
AGENT = "import sys\nfor i in range(int(sys.argv[1])):\n    print(f'line {i} of the synthetic agent', flush=False)\n"


def _floor(app, run_id, n):
    """Raw batched INSERTs of n agent_events rows (BATCH rows a statement, one commit a batch)."""
    from runner.extensions import db
    from runner.models import AgentEvent

    table = AgentEvent.__table__
    now = dt.datetime.now(dt.timezone.utc)
    gc.freeze()  # as the job has it (runner.queue): collections skip the heap made before
    with app.app_context():
        start = time.perf_counter()
        with db.engine.connect() as conn:
            for offset in range(0, n, BATCH):
                rows = [
                    {"run_id": run_id, "event_type": "log", "severity": "info", "path": None,
                     "message": f"line {i} of the synthetic agent", "data": {}, "created_at": now}
                    for i in range(offset, min(n, offset + BATCH))
                ]
                conn.execute(table.insert(), rows)
                conn.commit()
        elapsed = time.perf_counter() - start
    gc.unfreeze()
    return elapsed


def _epoch(stamp):
    """A stored createdAt as seconds since the epoch (SQLite hands it back naive, in UTC)."""
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()


# Listens in its own process, so its clock readings do not wait for the GIL of the job under test.
LISTENER = """
import sys, time, redis
pubsub = redis.Redis.from_url(sys.argv[1]).pubsub()
pubsub.subscribe(sys.argv[2])
pubsub.get_message(timeout=5)
print("ready", flush=True)
for message in pubsub.listen():
    print(time.time(), flush=True)
"""


class _Announcements:
    """When each commit of the run's events was announced on Redis (wall-clock seconds)."""

    def __init__(self, redis_url, run_id):
        from runner import events

        self.process = subprocess.Popen([sys.executable, "-c", LISTENER, redis_url, events.channel(run_id)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self):
        time.sleep(0.2)  # the last announcements on their way
        self.process.terminate()
        self.times = [float(line) for line in self.process.communicate()[0].split()]


def _ingest(app, user_api, run_jobs, project):
    """One run of the synthetic agent: (agent started → last line committed s, whole job s, commits)."""
    from runner.extensions import db
    from runner.models import AgentEvent

    run = user_api.post("/api/runs", json={"projectId": project, "title": "ingest", "prompt": "go",
                                           "selectedAgent": "command"}).get_json()
    announced = _Announcements(app.config["REDIS_URL"], run["id"])
    assert user_api.post(f"/api/runs/{run['id']}/start").status_code == 202
    started = time.perf_counter()
    run_jobs()
    job_seconds = time.perf_counter() - started
    announced.stop()
    done = user_api.get(f"/api/runs/{run['id']}").get_json()
    assert done["status"] == "completed", done

    with app.app_context():
        of_run = AgentEvent.run_id == run["id"]
        count, last_batch = db.session.execute(
            db.select(db.func.count(), db.func.max(AgentEvent.created_at))
            .where(of_run, AgentEvent.event_type == "log", AgentEvent.message.like("line %"))
        ).one()
        agent_started = db.session.scalar(
            db.select(AgentEvent.created_at).where(of_run, AgentEvent.message.like("agent started:%")))
    assert count == LINES, (count, LINES)
    # The commit of the last line: the first announcement after its batch was stamped.
    committed = min(t for t in announced.times if t >= _epoch(last_batch))
    commits = sum(1 for t in announced.times if _epoch(agent_started) < t <= committed)
    return committed - _epoch(agent_started), job_seconds, commits, run["id"]


def test_event_ingestion_vs_raw_batched_insert(app, admin_api, user_api, run_jobs, tmp_path, database_url):
    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", AGENT, str(LINES)]}).status_code == 200
    created = user_api.post("/api/projects", json={"name": "bench", "repositoryUrl": origin_url(tmp_path / "origin")})
    run_jobs()
    project = created.get_json()["id"]
    rounds = []  # a run, then the floor, each round: noise on this machine hits both alike
    for _ in range(ROUNDS):
        agent_seconds, job_seconds, commits, run_id = _ingest(app, user_api, run_jobs, project)
        rounds.append((agent_seconds, job_seconds, commits, _floor(app, run_id, LINES)))

    backend = database_url.split(":", 1)[0].split("+")[0]
    agent_seconds = statistics.median(r[0] for r in rounds)
    job_seconds = statistics.median(r[1] for r in rounds)
    floor_seconds = statistics.median(r[3] for r in rounds)
    ratios = sorted(r[3] / r[0] * 100 for r in rounds)
    print(f"\n[{backend}] ingestion of {LINES:,} agent lines → log events, median of {ROUNDS} rounds")
    print(f"  job path, agent started → last line committed: {agent_seconds:.3f} s = "
          f"{LINES / agent_seconds:,.0f} events/s   ({statistics.median(r[2] for r in rounds)} commits)")
    print(f"  job path, whole job wall time (worktree, snapshots, agent, …): {job_seconds:.2f} s = "
          f"{LINES / job_seconds:,.0f} events/s")
    print(f"  floor, raw batched INSERT ({BATCH} rows a statement, commit a batch): {floor_seconds:.3f} s = "
          f"{LINES / floor_seconds:,.0f} events/s")
    print(f"  job path / floor: {statistics.median(ratios):.1f} % (rounds: {', '.join(f'{r:.0f}' for r in ratios)})"
          f"   (goals: ≥ 5,000 events/s and ≥ 50 % of the floor)")
