"""Server params and agent providers (reads: settings:read; writes: settings:write and an admin)."""
from flask import g
from flask.views import MethodView

from blueprints.settings.schemas import (
    ProviderSchema,
    ProviderUpdateArgs,
    ServerParamListSchema,
    ServerParamsUpdateArgs,
)
from runner import policies, providers, settings
from runner.api import Blueprint, PageArgs, page_of, paginate
from runner.extensions import db, limit
from runner.models import AgentProvider

blp = Blueprint("settings", __name__, url_prefix="/api/settings", description="Server params and providers")


@blp.route("/server-params")
class ServerParams(MethodView):
    @blp.requires(policies.SETTINGS_READ)
    @blp.response(200, ServerParamListSchema)
    def get(self):
        """Every server param, merged from defaults, environment and stored values; secrets masked"""
        return {"data": settings.describe()}

    @blp.requires(policies.SETTINGS_WRITE, admin=True)
    @limit("RATELIMIT_SETTINGS_WRITE", scope="settings-write")
    @blp.arguments(ServerParamsUpdateArgs)
    @blp.response(200, ServerParamListSchema)
    @blp.problem_responses(429)
    def put(self, changes):
        """Change some server params; `null` resets one to its default. Secrets are never echoed"""
        settings.update(changes, g.runner_user)
        return {"data": settings.describe()}


@blp.route("/providers")
class Providers(MethodView):
    @blp.requires(policies.SETTINGS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(ProviderSchema))
    def get(self, args):
        """Agent providers, with `available` telling whether the executable is on this server"""
        return paginate(db.select(AgentProvider), AgentProvider.id, args, newest_first=False)


@blp.route("/providers/<string:key>")
class Provider(MethodView):
    @blp.requires(policies.SETTINGS_WRITE, admin=True)
    @limit("RATELIMIT_SETTINGS_WRITE", scope="settings-write")
    @blp.arguments(ProviderUpdateArgs)
    @blp.response(200, ProviderSchema)
    @blp.problem_responses(404, 429)
    def put(self, changes, key):
        """Enable or disable a provider, or change its command or models"""
        return providers.update(providers.get_or_404(key), changes)
