"""Benchmark: agent-event ingestion (run with -m perf -s).

A synthetic agent (the `command` provider running a Python one-liner) prints LINES lines as fast as
it can; the real job (RQ worker, in this process) turns each into a `log` event. Measured: events/s
persisted from the agent's first to its last event (their createdAt, stamped per inserted batch), and
over the job's whole wall time (worktree, snapshots and all); next to the floor, a raw batched INSERT of the same number of rows into agent_events in the
same database. Prints figures; asserts only that every line became an event.
Issue goals: ≥ 5,000 events/s and ≥ 50 % of the floor.
"""
import datetime as dt
import os
import sys
import time

import pytest

from gitrepo import origin_url

pytestmark = pytest.mark.perf
LINES = int(os.environ.get("BENCH_INGEST_LINES", 20_000))
BATCH = 1000
AGENT = "import sys\nfor i in range(int(sys.argv[1])):\n    print(f'line {i} of the synthetic agent', flush=False)\n"


def _floor(app, run_id, n):
    """Raw batched INSERTs of n agent_events rows (BATCH rows a statement, one commit a batch)."""
    from runner.extensions import db
    from runner.models import AgentEvent

    table = AgentEvent.__table__
    now = dt.datetime.now(dt.timezone.utc)
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
        return time.perf_counter() - start


def test_event_ingestion_vs_raw_batched_insert(app, admin_api, user_api, run_jobs, tmp_path, database_url):
    from runner.extensions import db
    from runner.models import AgentEvent

    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", AGENT, str(LINES)]}).status_code == 200
    created = user_api.post("/api/projects", json={"name": "bench", "repositoryUrl": origin_url(tmp_path / "origin")})
    run_jobs()
    project = created.get_json()["id"]
    run = user_api.post("/api/runs", json={"projectId": project, "title": "ingest", "prompt": "go",
                                           "selectedAgent": "command"}).get_json()
    assert user_api.post(f"/api/runs/{run['id']}/start").status_code == 202
    started = time.perf_counter()
    run_jobs()
    job_seconds = time.perf_counter() - started
    done = user_api.get(f"/api/runs/{run['id']}").get_json()
    assert done["status"] == "completed", done

    with app.app_context():
        rows = db.session.execute(
            db.select(db.func.count(), db.func.min(AgentEvent.created_at), db.func.max(AgentEvent.created_at))
            .where(AgentEvent.run_id == run["id"], AgentEvent.event_type == "log",
                   AgentEvent.message.like("line %"))
        ).one()
        total_events = db.session.scalar(db.select(db.func.count()).where(AgentEvent.run_id == run["id"]))
    count, first, last = rows
    assert count == LINES, (count, LINES)
    agent_seconds = max((last - first).total_seconds(), 1e-6)
    floor_seconds = _floor(app, run["id"], LINES)

    backend = database_url.split(":", 1)[0].split("+")[0]
    ingest_rate = LINES / agent_seconds
    floor_rate = LINES / floor_seconds
    print(f"\n[{backend}] ingestion of {LINES} agent lines → log events ({total_events} events in the run)")
    print(f"  job path, first→last agent event (createdAt): {agent_seconds:.2f} s = {ingest_rate:,.0f} events/s")
    print(f"  job path, whole job wall time (worktree, snapshots, agent, …): {job_seconds:.2f} s = "
          f"{LINES / job_seconds:,.0f} events/s")
    print(f"  floor, raw batched INSERT ({BATCH} rows a statement, commit a batch): {floor_seconds:.2f} s = "
          f"{floor_rate:,.0f} events/s")
    print(f"  job path / floor: {ingest_rate / floor_rate * 100:.1f} %   (goals: ≥ 5,000 events/s and ≥ 50 % of the floor)")
