"""APNs device registrations of the calling user."""
from flask import g
from flask.views import MethodView

from blueprints.devices.schemas import DeviceArgs, DeviceSchema
from runner import devices, policies
from runner.api import Blueprint, PageArgs, page_of, paginate
from runner.extensions import db
from runner.models import Device

blp = Blueprint("devices", __name__, url_prefix="/api/devices", description="Push notification devices")


@blp.route("")
class Devices(MethodView):
    @blp.requires()
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(DeviceSchema))
    def get(self, args):
        """The caller's registered devices"""
        query = db.select(Device).where(Device.user_id == g.runner_user.id)
        return paginate(query, Device.id, args)

    @blp.requires()
    @blp.arguments(DeviceArgs)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="The token was already registered; updated")
    def post(self, args):
        """Register an APNs device token (re-registering updates it and reactivates it)"""
        device, created = devices.register(g.runner_user, **args)
        return device, 201 if created else 200


@blp.route("/<id:device_id>")
class DeviceItem(MethodView):
    @blp.requires()
    @blp.response(204)
    @blp.problem_responses(404)
    def delete(self, device_id):
        """Unregister a device"""
        db.session.delete(policies.owned_or_404(Device, device_id))
        db.session.commit()
