"""Notification bodies: APNs deliveries of a run's news."""
import marshmallow as ma

from runner.api import Schema, UtcDateTime


class NotificationSchema(Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    device_id = ma.fields.Integer(allow_none=True, metadata={"description": "null once the device is deleted"})
    run_status = ma.fields.String(metadata={"description": "The run status the push announces"})
    status = ma.fields.String(
        metadata={"description": "pending, retrying, sent, failed, or device_disabled (APNs said the token is dead)"}
    )
    apns_id = ma.fields.String(allow_none=True, metadata={"description": "APNs' id of a sent push"})
    http_status = ma.fields.Integer(allow_none=True, metadata={"description": "APNs' last HTTP status"})
    reason = ma.fields.String(allow_none=True, metadata={"description": "APNs' reason, or why nothing was sent"})
    attempts = ma.fields.Integer()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
