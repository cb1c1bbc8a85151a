"""Enqueueing and workers: RQ on the app's Redis, always with an explicit connection."""
from rq import Queue, Worker

from runner.extensions import redis_client

# Runs first: a worker takes run jobs before housekeeping.
QUEUES = ("runs", "default")


def get_queue(name="default"):
    return Queue(name, connection=redis_client.connection)


def make_worker(names):
    connection = redis_client.connection
    return Worker([Queue(name, connection=connection) for name in names], connection=connection)
