"""Git jobs of runs: pushing a run's approved commit to the project's remote (network-slow, so queued).

The job takes the run id; `runner.reviews.execute_push` does the work and reports the outcome as the
run's `pushed` or `error` event. A push refused by the remote is an outcome, not a job failure;
only the unexpected (a lost lock, the database gone) fails the job, after an `error` event.
"""
import logging

from rq import get_current_job

from runner import reviews
from runner.extensions import db

log = logging.getLogger(__name__)


def push_run(run_id):
    job = get_current_job()
    job_id = job.id if job else None
    try:
        return reviews.execute_push(run_id, job_id)
    except Exception:
        log.exception("run %s: push job failed", run_id)
        db.session.rollback()
        reviews.push_failed_unexpectedly(run_id, job_id)
        raise
