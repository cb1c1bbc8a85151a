"""Liveness and readiness, public and never rate-limited (for load balancers and uptime checks)."""
import logging

from flask.views import MethodView
from sqlalchemy import text

from blueprints.health.schemas import HealthSchema, ReadySchema
from runner.api import Blueprint
from runner.errors import ApiError
from runner.extensions import db, limiter, redis_client

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/api", description="Liveness and readiness")
limiter.exempt(blp)


@blp.route("/health")
class Health(MethodView):
    @blp.public
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up"""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.public
    @blp.response(200, ReadySchema)
    @blp.problem_responses(503)
    def get(self):
        """The database and Redis are reachable"""
        checks = {"database": _check(_ping_database), "redis": _check(_ping_redis)}
        if any(state != "ok" for state in checks.values()):
            raise ApiError(
                "A dependency is unreachable; see 'checks'.",
                status=503,
                slug="not-ready",
                title="Not ready",
                checks=checks,
            )
        return {"status": "ok", "checks": checks}


def _ping_database():
    db.session.execute(text("SELECT 1"))


def _ping_redis():
    redis_client.connection.ping()


def _check(probe):
    try:
        probe()
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("readiness check %s failed: %s", probe.__name__, type(exc).__name__)
        db.session.rollback()
        return "unreachable"
