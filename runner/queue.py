"""Enqueueing and workers: RQ on the app's Redis, always with an explicit connection."""
from rq import Queue, Worker

from runner.extensions import db, redis_client

# Runs first: a worker takes run jobs before housekeeping.
QUEUES = ("runs", "default")


def get_queue(name="default"):
    return Queue(name, connection=redis_client.connection)


class AppWorker(Worker):
    """An RQ worker whose jobs run in the app context it was started in (see `runner worker`)."""

    def main_work_horse(self, job, queue):
        # The work horse is a fork: pooled database connections inherited from the worker would be
        # shared by two processes. Drop them (without closing the parent's sockets) and connect anew.
        db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


def make_worker(names):
    connection = redis_client.connection
    return AppWorker([Queue(name, connection=connection) for name in names], connection=connection)
