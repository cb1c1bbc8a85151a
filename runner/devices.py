"""APNs device registrations: one row per user and device token.

An APNs token names one app install on one phone. When another user signs in on that phone and
registers it, the previous user's row goes: their pushes must not reach the new user.
"""
from sqlalchemy.exc import IntegrityError

from runner.extensions import db
from runner.models import Device


def register(user, token, environment, name=None):
    """Upsert the user's device `token`; return `(device, created)`."""
    token = token.lower()
    for _ in range(2):  # a concurrent insert of the same token loses the race once, then updates
        device = db.session.scalar(db.select(Device).where(Device.user_id == user.id, Device.token == token))
        created = device is None
        if created:
            device = Device(user_id=user.id, token=token)
            db.session.add(device)
        device.environment = environment
        if name is not None or created:
            device.name = name
        device.active = True
        device.disabled_reason = None
        db.session.execute(db.delete(Device).where(Device.token == token, Device.user_id != user.id))
        try:
            db.session.commit()
            return device, created
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError("device upsert did not settle")
