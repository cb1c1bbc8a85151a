"""Authentication: password hashing, Sanctum-style personal access tokens, and the request guard.

A token is `<id>|<40 random chars>`; the database keeps only SHA-256 of the random part, so a
leaked database grants nothing. Every `/api/` view needs a valid token unless declared public;
the guard runs before argument parsing, so an anonymous request learns nothing about bodies.
"""
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import string

import argon2.profiles
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from itsdangerous import BadData, URLSafeTimedSerializer

from runner import api, policies
from runner.errors import Unauthenticated
from runner.extensions import db
from runner.models import PersonalAccessToken, User, utcnow

_ALPHABET = string.ascii_letters + string.digits
_UNSET = object()


@functools.cache
def _hasher_for(profile):
    return PasswordHasher.from_parameters(getattr(argon2.profiles, profile))


def _hasher():
    """argon2id with the configured parameter profile (RFC 9106 low-memory by default)."""
    return _hasher_for(current_app.config["PASSWORD_HASH_PROFILE"])


@functools.cache
def _dummy_hash(profile):
    """Verified against when the email is unknown, so both failures take the same time."""
    return _hasher_for(profile).hash(secrets.token_urlsafe(16))


def hash_password(password):
    return _hasher().hash(password)


def verify_password(user, password):
    stored = user.password_hash if user else _dummy_hash(current_app.config["PASSWORD_HASH_PROFILE"])
    try:
        return _hasher().verify(stored, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def find_user_by_credentials(email, password):
    user = db.session.scalar(db.select(User).where(User.email == normalize_email(email)))
    if not verify_password(user, password):
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        # Hashed under older parameters: upgrade while the password is at hand.
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def normalize_email(email):
    return email.strip().lower()


def create_user(email, password, *, name="", is_admin=False):
    user = User(
        email=normalize_email(email), name=name, password_hash=hash_password(password), is_admin=is_admin
    )
    db.session.add(user)
    db.session.flush()
    return user


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user, name, abilities, *, ttl_seconds=_UNSET):
    """Store a new token for `user` and return `(row, plaintext)`; the plaintext is shown once."""
    if ttl_seconds is _UNSET:
        ttl_seconds = current_app.config["TOKEN_TTL_SECONDS"]
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    row = PersonalAccessToken(
        user_id=user.id,
        name=name,
        token_hash=_digest(secret),
        abilities=list(abilities),
        expires_at=utcnow() + dt.timedelta(seconds=ttl_seconds) if ttl_seconds else None,
    )
    db.session.add(row)
    db.session.flush()
    return row, f"{row.id}|{secret}"


def find_token(plaintext):
    """The live token row for `<id>|<secret>` (or a bare secret), or None."""
    token_id, sep, secret = plaintext.partition("|")
    if sep:
        if not token_id.isdigit() or len(token_id) > 18:
            return None
        row = db.session.get(PersonalAccessToken, int(token_id))
        if row is None or not hmac.compare_digest(row.token_hash, _digest(secret)):
            return None
    else:
        row = db.session.scalar(
            db.select(PersonalAccessToken).where(PersonalAccessToken.token_hash == _digest(plaintext))
        )
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    return row


def _bearer():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _stream_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="runner.stream-token")


def issue_stream_token(token):
    """A signed, short-lived stand-in for `token`, accepted only by stream endpoints. It carries no
    secret of its own: revoking or expiring the token it stands for ends it too."""
    return _stream_serializer().dumps({"t": token.id})


def _from_stream_token():
    """The token a `?streamToken=` stands for, on views that accept one."""
    value = request.args.get("streamToken")
    if not value or request.endpoint is None:
        return None
    view = api.view_function(request.endpoint, request.method)
    if not getattr(view, api.STREAM_ATTR, False):
        return None
    try:
        payload = _stream_serializer().loads(value, max_age=current_app.config["STREAM_TOKEN_TTL_SECONDS"])
    except BadData:
        return None
    row = db.session.get(PersonalAccessToken, payload.get("t")) if isinstance(payload, dict) else None
    if row is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    return row


def current_token(required=True):
    """The token of this request (looked up once and cached on `g`), or None/401."""
    if "runner_token" not in g:
        plaintext = _bearer()
        token = find_token(plaintext) if plaintext else _from_stream_token()
        g.runner_token = token
        g.runner_user = token.user if token else None
        if token is not None:
            _touch(token)
    if g.runner_token is None and required:
        raise Unauthenticated()
    return g.runner_token


def current_user():
    current_token()
    return g.runner_user


def _touch(token):
    """Record lastUsedAt, at most once per TOKEN_TOUCH_SECONDS so reads do not all become writes."""
    now = utcnow()
    every = dt.timedelta(seconds=current_app.config["TOKEN_TOUCH_SECONDS"])
    if token.last_used_at is None or now - token.last_used_at >= every:
        db.session.execute(
            db.update(PersonalAccessToken)
            .where(PersonalAccessToken.id == token.id)
            .values(last_used_at=now)
        )
        db.session.commit()
        token.last_used_at = now


def guard():
    """before_request: authenticate every API view not declared public, then check its ability."""
    if request.endpoint is None or request.method == "OPTIONS":
        return  # routing failed (404/405 answer) or a CORS preflight
    view = api.view_function(request.endpoint, request.method)
    if view is None or getattr(view, api.PUBLIC_ATTR, False):
        return
    if not request.path.startswith("/api/") or request.endpoint.startswith("api-docs."):
        return
    current_token()
    ability = getattr(view, api.ABILITY_ATTR, None)
    if ability:
        policies.authorize(ability)
    if getattr(view, api.ADMIN_ATTR, False):
        policies.require_admin()
