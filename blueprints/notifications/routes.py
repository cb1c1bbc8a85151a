"""Push deliveries of a run: what was sent to its owner's devices and what APNs answered."""
from flask import g
from flask.views import MethodView

from blueprints.notifications.schemas import NotificationSchema
from runner import policies, runs
from runner.api import Blueprint, PageArgs, page_of, paginate
from runner.errors import NotFound
from runner.extensions import db
from runner.models import Notification

blp = Blueprint("notifications", __name__, url_prefix="/api/runs", description="Push notifications of runs")


@blp.route("/<id:run_id>/notifications")
class RunNotifications(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(NotificationSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """Pushes of a run to its owner's devices, newest first"""
        run = runs.run_or_404(run_id)
        # Deliveries name the owner's devices: project members who see the run do not see them.
        if run.user_id != g.runner_user.id:
            raise NotFound(f"Run {run_id}'s notifications are its owner's; you see only your own runs' pushes.")
        return paginate(db.select(Notification).where(Notification.run_id == run.id), Notification.id, args)
