"""Idempotency-Key on POST: the first answer is kept 24 h per user and key, and replayed verbatim.

Mobile clients retry on bad networks; a retried POST must never create or start twice. The record
lives in Redis (it expires by itself). A request claims its key with SET NX before the view runs,
so two concurrent retries cannot both run it: the second gets 409 until the first has answered.
A key reused with a different body (method, path or JSON) is a 422 problem.

Views that hand out secrets (tokens) are not replayed: keeping their answer would mean storing the
secret in plain text; a retried token request simply yields another token.
"""
import hashlib
import json

from flask import current_app, g, request

from runner import api
from runner.errors import ApiError, ValidationFailed
from runner.extensions import redis_client

HEADER = "Idempotency-Key"
NO_REPLAY_ATTR = "_runner_no_idempotency_replay"
_PENDING = "pending"
# How long a claimed key waits for its first answer before another attempt may run it.
_CLAIM_SECONDS = 120


def no_replay(func):
    """Declare that a view's answer must not be stored for replay (it carries a secret)."""
    setattr(func, NO_REPLAY_ATTR, True)
    # A fresh dict: functools.wraps shares the wrapped function's one.
    func._apidoc = {**getattr(func, "_apidoc", {}), "idempotency_replay": False}
    return func


def document(doc, doc_info, *, method, **kwargs):
    """flask-smorest doc callback: the Idempotency-Key header on every POST that replays."""
    public = doc_info.get("manual_doc", {}).get("security") == []
    if method != "post" or public or not doc_info.get("idempotency_replay", True):
        return doc
    doc.setdefault("parameters", []).append(
        {
            "in": "header",
            "name": HEADER,
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"},
            "description": "Retries with the same key (and body) within 24 h get the first answer "
            "again, with `Idempotent-Replayed: true`; the same key with another body is a 422.",
        }
    )
    doc.setdefault("responses", {}).setdefault("409", "CONFLICT")
    return doc


def _applies():
    if request.method != "POST" or HEADER not in request.headers:
        return False
    if g.get("runner_token") is None or request.endpoint is None:
        return False
    view = api.view_function(request.endpoint, request.method)
    return view is not None and not getattr(view, NO_REPLAY_ATTR, False)


def _fingerprint():
    body = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True) if body else ""
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()


def _redis_key(key):
    return f"runner:idempotency:{g.runner_token.user_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def before_request():
    if not _applies():
        return None
    key = request.headers[HEADER].strip()
    if not key or len(key) > 255:
        raise ValidationFailed({HEADER: ["Send 1 to 255 characters."]})
    redis = redis_client.connection
    store_key = _redis_key(key)
    fingerprint = _fingerprint()
    claim = json.dumps({"state": _PENDING, "fingerprint": fingerprint})
    if redis.set(store_key, claim, nx=True, ex=_CLAIM_SECONDS):
        g.runner_idempotency = (store_key, fingerprint)
        return None
    stored = redis.get(store_key)
    record = json.loads(stored) if stored else None
    if record is None:  # expired between SET and GET; treat as a fresh request next time
        raise ApiError("Retry the request.", status=409, slug="idempotency-key-in-use")
    if record["fingerprint"] != fingerprint:
        raise ValidationFailed(
            {HEADER: ["This key was used with a different request; use a new key for a new request."]},
            slug="idempotency-key-reused",
            title="Idempotency-Key reused with a different request",
        )
    if record["state"] == _PENDING:
        raise ApiError(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            status=409,
            slug="idempotency-key-in-use",
            title="Idempotent request in progress",
        )
    response = current_app.response_class(
        record["body"], status=record["status"], mimetype=record["mimetype"]
    )
    for name, value in record["headers"]:
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


_KEPT_HEADERS = ("Location",)


def after_request(response):
    claim = g.pop("runner_idempotency", None)
    if claim is None:
        return response
    store_key, fingerprint = claim
    redis = redis_client.connection
    if response.status_code >= 500 or response.status_code == 429:
        # Not an answer to the request: let the client's retry run it again.
        redis.delete(store_key)
        return response
    record = {
        "state": "done",
        "fingerprint": fingerprint,
        "status": response.status_code,
        "mimetype": response.mimetype,
        "headers": [(k, v) for k, v in response.headers.items() if k in _KEPT_HEADERS],
        "body": response.get_data(as_text=True),
    }
    redis.set(store_key, json.dumps(record), ex=current_app.config["IDEMPOTENCY_TTL_SECONDS"])
    return response
