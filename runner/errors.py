"""RFC 7807 problem+json: the one shape of every error Runner answers with.

`problem()` builds the response; `ApiError` and its subclasses are what domain code raises;
`register_error_handlers` routes HTTP exceptions (Werkzeug, webargs validation, Flask-Limiter's 429)
and unexpected exceptions through `problem()`.
"""
import http
import logging
import math
import time
from urllib.parse import quote

import redis
import sqlalchemy.exc
from flask import current_app, g, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_MIMETYPE = "application/problem+json"

log = logging.getLogger(__name__)

# The stable slug of each status when nothing more specific is known.
DEFAULT_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    500: "internal-error",
    503: "service-unavailable",
}


def problem(status, slug=None, title=None, detail=None, headers=None, **extensions):
    """Build an `application/problem+json` response; extension members are passed as keywords."""
    body = {
        "type": current_app.config["ERROR_TYPE_BASE"] + (slug or DEFAULT_SLUGS.get(status, "error")),
        "title": title or _phrase(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = _instance()
    body.update({key: value for key, value in extensions.items() if value is not None})
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _instance():
    """The request path as a URI reference: Werkzeug hands it back decoded, and a decoded path
    may hold characters (spaces, non-ASCII, a lone '%') that a URI cannot."""
    return quote(request.path, safe="/:@!$&'()*+,;=")


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ApiError(Exception):
    """A problem raised by domain code; handlers turn it into problem+json."""

    status = 400
    slug = None
    title = None

    def __init__(self, detail=None, *, status=None, slug=None, title=None, headers=None, **extensions):
        super().__init__(detail)
        self.detail = detail
        self.status = status or self.status
        self.slug = slug or self.slug
        self.title = title or self.title
        self.headers = headers
        self.extensions = extensions

    def response(self):
        return problem(
            self.status, self.slug, self.title, self.detail, self.headers, **self.extensions
        )


class Unauthenticated(ApiError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail="Send a valid token as 'Authorization: Bearer <id>|<secret>'.", **kw):
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="runner"'})
        super().__init__(detail, **kw)


class Forbidden(ApiError):
    status = 403
    slug = "missing-ability"
    title = "The token lacks a required ability"


class NotFound(ApiError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class Conflict(ApiError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class ValidationFailed(ApiError):
    """422 with `errors: {fieldName: [messages]}`, the same shape as schema validation."""

    status = 422
    slug = "validation-failed"

    def __init__(self, errors, detail="Fix the fields listed in 'errors' and retry.", **kw):
        super().__init__(detail, errors=errors, **kw)


def _flatten_webargs_messages(messages):
    """webargs nests errors by location ({'json': {...}, 'query': {...}}); clients want fields."""
    errors = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            errors.update(location_errors)
        else:
            errors.setdefault("_request", []).extend(location_errors)
    return errors


def handle_http_exception(error):
    # get_response() keeps the headers Werkzeug attached (Allow on 405, Retry-After on 429/503).
    headers = {
        name: value
        for name, value in error.get_response().headers.items()
        if name not in ("Content-Type", "Content-Length")
    }
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    status = error.code or 500
    slug = None
    detail = error.description
    extensions = {}

    messages = data.get("messages") or data.get("errors")
    if status == 400 and messages and "json" in messages and not isinstance(messages["json"], dict):
        slug, detail = "malformed-json", "The request body is not valid JSON."
    elif status == 422 and messages:
        extensions["errors"] = _flatten_webargs_messages(messages)
        detail = "Fix the fields listed in 'errors' and retry."
    elif status == 405:
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'none')}."
    elif status == 404:
        detail = f"Nothing is found at {request.path}."
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        detail = f"The request body is larger than {limit} bytes."
    elif status == 429:
        retry_after = _retry_after_seconds(headers)
        if retry_after is not None:
            extensions["retryAfter"] = retry_after
            headers["Retry-After"] = str(retry_after)
            g.runner_retry_after = retry_after
        detail = f"Rate limit of {error.description} exceeded; retry after the given seconds."
    elif status >= 500:
        detail = None  # never leak internals
    if "message" in data and status < 500:
        detail = data["message"]
    return problem(status, slug, None, detail, headers, **extensions)


def _retry_after_seconds(headers):
    """Seconds until the breached limit's window resets (at least 1), or None when unknown.

    Flask-Limiter adds its headers only after this handler has built the body, so the value is
    read from the breached limit itself.
    """
    from runner.extensions import limiter

    breached = limiter.current_limit
    if breached is not None and breached.breached:
        reset_time, _ = breached.window
        return max(1, math.ceil(reset_time - time.time()))
    value = headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def _settle_retry_after(response):
    """after_request, run last. Flask-Limiter writes Retry-After on every limited response, 2xx
    included, and truncates it on 429 (one second less than the body could say). A success is no
    instruction to wait: drop it there; on a 429 repeat the body's `retryAfter`."""
    retry_after = g.pop("runner_retry_after", None)
    if response.status_code == 429 and retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    elif response.status_code < 400:
        response.headers.pop("Retry-After", None)
    return response


def handle_api_error(error):
    return error.response()


# Transient unavailability of what the API stands on: the request may succeed when retried.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, sqlalchemy.exc.OperationalError)


def handle_unexpected(error):
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, UNAVAILABLE):
        log.error("dependency unavailable on %s %s: %s", request.method, request.path, type(error).__name__)
        return problem(
            503,
            "dependency-unavailable",
            "A service Runner depends on is unavailable",
            "The database or Redis cannot be reached; retry shortly (GET /api/ready tells which).",
            {"Retry-After": "5"},
            retryAfter=5,
        )
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, detail="The server failed to handle this request; it has been logged.")


def register_error_handlers(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(Exception, handle_unexpected)
    # after_request functions run last-registered first: at the front of the list, this one runs
    # after all others, Flask-Limiter's header injection included.
    app.after_request_funcs.setdefault(None, []).insert(0, _settle_retry_after)
