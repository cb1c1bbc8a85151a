"""Push jobs: a run's news to its owner's active devices over APNs, one `notifications` row and one
job per device.

`notify_run` fans out; `push_notification` sends one push and records what Apple answered. A busy or
failing APNs (429, 5xx, no answer) is retried by RQ with backoff, per device, so a retry never
resends to a device that already has the push. A dead token (410, BadDeviceToken, Unregistered)
disables its device. Every failure stays in these jobs and their rows: a run's status never depends
on a push.
"""
import logging
import time

from flask import current_app
from rq import Retry, get_current_job

from runner import apns, notifications
from runner.extensions import db
from runner.models import Device, Notification, Project, Run

log = logging.getLogger(__name__)

# Seconds before each retry of a push APNs could not take (config APNS_RETRY_SECONDS overrides).
RETRY_SECONDS = (10, 60, 300)
FINAL = ("sent", "failed", "device_disabled")


class PushDeferred(Exception):
    """Raised to have RQ retry a push later; its message says what APNs answered."""


def _retry_seconds():
    return tuple(current_app.config.get("APNS_RETRY_SECONDS", RETRY_SECONDS))


def notify_run(run_id, status):
    """Push the news of run `run_id` reaching `status` to each active device of its owner.
    Returns how many pushes were queued."""
    config, why_not = notifications.readiness()
    if config is None:
        log.info("run %s: no %s push: %s", run_id, status, why_not)
        return 0
    run = db.session.get(Run, run_id)
    if run is None:
        return 0
    devices = db.session.scalars(
        db.select(Device).where(Device.user_id == run.user_id, Device.active.is_(True)).order_by(Device.id)
    ).all()
    rows = [Notification(run_id=run_id, device_id=device.id, run_status=status, status="pending") for device in devices]
    db.session.add_all(rows)
    db.session.commit()
    from runner import queue

    intervals = _retry_seconds()
    queued = 0
    for row in rows:
        try:
            queue.get_queue().enqueue(
                push_notification,
                row.id,
                job_id=f"push-{row.id}",
                retry=Retry(max=len(intervals), interval=list(intervals)) if intervals else None,
                result_ttl=86400,
                failure_ttl=7 * 86400,
            )
            queued += 1
        except Exception as exc:
            row.status, row.reason = "failed", f"Could not queue the push ({type(exc).__name__})."
    db.session.commit()
    return queued


def push_notification(notification_id):
    """Send one push (a notifications row) and record the answer; returns the row's status."""
    row = db.session.get(Notification, notification_id)
    if row is None or row.status in FINAL:
        return row and row.status  # already settled: a requeued job sends nothing twice
    device = db.session.get(Device, row.device_id) if row.device_id else None
    config, why_not = notifications.readiness()
    if device is None:
        return _settle(row, "failed", reason="The device was unregistered before the push.")
    if not device.active:
        return _settle(row, "device_disabled", reason=device.disabled_reason or "The device is disabled.")
    if config is None:
        return _settle(row, "failed", reason=why_not)
    run = db.session.get(Run, row.run_id)
    project = db.session.get(Project, run.project_id)
    message = notifications.payload(run, project, row.run_status)

    # Counted before sending: an attempt that dies mid-send still happened.
    row.attempts += 1
    db.session.commit()
    try:
        with apns.ApnsClient(config) as client:
            delivery = client.send(
                device.token,
                device.environment,
                message,
                collapse_id=notifications.collapse_id(run.id),
                expiration=time.time() + notifications.EXPIRATION_SECONDS,
            )
        outcome, http_status, apns_id, reason = delivery.outcome, delivery.status_code, delivery.apns_id, delivery.reason
    except apns.ApnsError as exc:
        outcome, http_status, apns_id, reason = exc.outcome, None, None, str(exc)

    if outcome == apns.SENT:
        return _settle(row, "sent", http_status=http_status, apns_id=apns_id)
    if outcome == apns.DEVICE_GONE:
        device.active = False
        device.disabled_reason = f"APNs answered {http_status} {reason}"[:200]
        log.info("device %s disabled: APNs answered %s %s", device.id, http_status, reason)
        return _settle(row, "device_disabled", http_status=http_status, reason=reason)
    job = get_current_job()
    if outcome == apns.RETRY and job is not None and job.retries_left:
        _settle(row, "retrying", http_status=http_status, reason=reason)
        raise PushDeferred(f"notification {row.id}: APNs answered {http_status or 'nothing'} ({reason}); retrying")
    return _settle(row, "failed", http_status=http_status, reason=reason)


def _settle(row, status, *, http_status=None, apns_id=None, reason=None):
    row.status, row.http_status, row.apns_id = status, http_status, apns_id and apns_id[:64]
    row.reason = reason and reason[:200]
    db.session.commit()
    log.info("notification %s (run %s, device %s): %s", row.id, row.run_id, row.device_id, status)
    return status
