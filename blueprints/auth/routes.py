"""Sanctum-style auth: issue a token, elevate it, revoke it, and say who is calling."""
import datetime as dt

from flask import current_app, g
from flask.views import MethodView

from blueprints.auth.schemas import ElevateArgs, StreamTokenSchema, TokenArgs, TokenSchema, UserSchema
from runner import auth, policies
from runner.api import Blueprint
from runner.errors import ApiError, ValidationFailed
from runner.extensions import db
from runner.idempotency import no_replay
from runner.models import utcnow

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Tokens and the calling user")


@blp.route("/token")
class Token(MethodView):
    @blp.public
    @no_replay
    @blp.arguments(TokenArgs)
    @blp.response(201, TokenSchema)
    @blp.problem_responses(401)
    def post(self, args):
        """Exchange email and password for a personal access token

        Without `abilities` the token gets the mobile set. `git:push` and `settings:write`
        are never granted here: see `POST /api/auth/elevate`.
        """
        user = auth.find_user_by_credentials(args["email"], args["password"])
        if user is None:
            raise ApiError(
                "The email or password is wrong.",
                status=401,
                slug="invalid-credentials",
                title="Invalid credentials",
            )
        abilities = args.get("abilities") or list(policies.DEFAULT_MOBILE)
        row, plaintext = auth.issue_token(user, args.get("device_name") or "mobile", abilities)
        db.session.commit()
        return {"token": plaintext, "abilities": row.abilities, "expires_at": row.expires_at}


@blp.route("/elevate")
class Elevate(MethodView):
    @blp.requires()
    @no_replay
    @blp.arguments(ElevateArgs)
    @blp.response(201, TokenSchema)
    def post(self, args):
        """Issue a short-lived token adding `git:push` and/or `settings:write`

        The password is checked again; `settings:write` needs an admin. The new token carries the
        caller's abilities plus the requested ones and expires after ELEVATION_TTL_SECONDS (15 min).
        """
        user, token = g.runner_user, g.runner_token
        if not auth.verify_password(user, args["password"]):
            raise ValidationFailed({"password": ["The password is wrong."]})
        requested = list(dict.fromkeys(args["abilities"]))
        admin_only = [a for a in requested if a in policies.ADMIN_ONLY]
        if admin_only:
            policies.require_admin(f"Only administrators may hold {', '.join(admin_only)}.")
        abilities = token.abilities + [a for a in requested if not policies.has_ability(token.abilities, a)]
        row, plaintext = auth.issue_token(
            user,
            f"{token.name} (elevated)",
            abilities,
            ttl_seconds=current_app.config["ELEVATION_TTL_SECONDS"],
        )
        db.session.commit()
        return {"token": plaintext, "abilities": row.abilities, "expires_at": row.expires_at}


@blp.route("/stream-token")
class StreamToken(MethodView):
    @blp.requires()
    @no_replay
    @blp.response(201, StreamTokenSchema)
    def post(self):
        """A short-lived token for `?streamToken=` on event streams (EventSource cannot send headers)"""
        ttl = current_app.config["STREAM_TOKEN_TTL_SECONDS"]
        return {
            "stream_token": auth.issue_stream_token(g.runner_token),
            "expires_at": utcnow() + dt.timedelta(seconds=ttl),
        }


@blp.route("/logout")
class Logout(MethodView):
    @blp.requires()
    @blp.response(204)
    def post(self):
        """Revoke the calling token"""
        db.session.delete(g.runner_token)
        db.session.commit()


@blp.route("/me")
class Me(MethodView):
    @blp.requires()
    @blp.response(200, UserSchema)
    def get(self):
        """The calling user, with the abilities of the calling token"""
        user, token = g.runner_user, g.runner_token
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "is_admin": user.is_admin,
            "created_at": user.created_at,
            "abilities": token.abilities,
            "token": token,
        }
