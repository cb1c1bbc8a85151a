"""Enqueueing and workers: RQ on the app's Redis, always with an explicit connection."""
import gc

from rq import Queue, SimpleWorker, Worker

from runner.extensions import db, redis_client

# Runs first: a worker takes run jobs before housekeeping.
QUEUES = ("runs", "default")


def get_queue(name="default"):
    return Queue(name, connection=redis_client.connection)


def enqueue(func, *ids, job_id, queue="default", timeout=None):
    """Queue `func(*ids)` (jobs take ids, never ORM objects) under `job_id`; return the job id.

    `timeout` is RQ's hard limit in seconds for the job.
    """
    job = get_queue(queue).enqueue(
        func, *ids, job_id=job_id, job_timeout=timeout, result_ttl=86400, failure_ttl=7 * 86400
    )
    return job.id


class _FrozenHeap:
    """Garbage collection during a job looks only at what the job made. The worker's heap (the
    app, SQLAlchemy, the libraries: a quarter of a million objects in a test process) is frozen for
    the job's length: without it every full collection scanned it all, and a chatty run stalled
    for ~0.1 s a few times per 10,000 events (`python -m tests.perf -k ingest`). In a forked work
    horse it also keeps the inherited pages shared."""

    def perform_job(self, *args, **kwargs):
        gc.freeze()
        try:
            return super().perform_job(*args, **kwargs)
        finally:
            gc.unfreeze()


class _InProcessWorker(_FrozenHeap, SimpleWorker):
    pass


class AppWorker(_FrozenHeap, Worker):
    """An RQ worker whose jobs run in the app context it was started in (see `runner worker`)."""

    def main_work_horse(self, job, queue):
        # The work horse is a fork: pooled database connections inherited from the worker would be
        # shared by two processes. Drop them (without closing the parent's sockets) and connect anew.
        db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


def make_worker(names, *, fork=True):
    """A worker on `names`; `fork=False` runs jobs in this very process (tests, debugging)."""
    connection = redis_client.connection
    worker_class = AppWorker if fork else _InProcessWorker
    return worker_class([Queue(name, connection=connection) for name in names], connection=connection)
