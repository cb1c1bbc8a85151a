"""flask-smorest, once, with Runner's conventions built in.

Every blueprint imports `Blueprint`, `Schema` and `paginate` from here, never from flask_smorest:
- `Schema` speaks camelCase both ways and writes timestamps as ISO-8601 UTC with `Z`;
- `Blueprint.requires(ability)` declares what a view needs (enforced in `runner.auth`, before any
  argument parsing) and documents the 401/403 answers; `Blueprint.public` opts a view out of auth;
- `paginate` is the one keyset cursor pagination: `{data, meta: {nextCursor}}`.
"""
import datetime as dt
import functools
import re
from collections.abc import Mapping

import flask_smorest
import marshmallow as ma
from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.routing import IntegerConverter, UnicodeConverter
from webargs.flaskparser import FlaskParser

from runner import errors
from runner.extensions import db

PUBLIC_ATTR = "_runner_public"
ABILITY_ATTR = "_runner_ability"
ADMIN_ATTR = "_runner_admin"
STREAM_ATTR = "_runner_stream"


def camelcase(name):
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class UtcDateTime(ma.fields.DateTime):
    """ISO-8601 in UTC with a `Z`; naive values are taken as UTC (SQLite hands them back naive)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )


class StrictBoolean(ma.fields.Boolean):
    """Only JSON true/false: marshmallow's Boolean would take "yes", 1 or "off"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


UNSTORABLE_TEXT = "Text must not contain NUL characters (\\u0000) or unpaired surrogates."
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # jobs.providers.base.storable replaces the same


def is_unstorable(value):
    """Whether `value` holds a string no database column can keep: a NUL (PostgreSQL refuses it in
    text) or an unpaired surrogate (JSON's "\\ud800" is no character, and UTF-8 cannot encode it)."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, Mapping):
        return any(is_unstorable(key) or is_unstorable(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(is_unstorable(item) for item in value)
    return False


class Schema(ma.Schema):
    """Base schema: snake_case attributes, camelCase on the wire; unknown keys are errors."""

    class Meta:
        unknown = ma.RAISE

    def on_bind_field(self, field_name, field_obj):
        field_obj.data_key = camelcase(field_obj.data_key or field_name)

    @ma.pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        """Bodies and query strings: such text would fail in the database (a 500) or in an argv or
        environment (a failed commit), so it is a 422 naming the member, before any view sees it."""
        if isinstance(data, Mapping):
            errors = {key: [UNSTORABLE_TEXT] for key, value in data.items() if is_unstorable(key) or is_unstorable(value)}
            if errors:
                raise ma.ValidationError(errors)
        return data


class ProblemSchema(Schema):
    """RFC 7807 problem details (documentation only; `runner.errors.problem` writes them)."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "Error type: a URL ending in a stable slug"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String(metadata={"description": "The request path"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={"description": "422 only: camelCase field name -> list of messages"},
    )
    required_ability = ma.fields.String(metadata={"description": "403 only"})
    retry_after = ma.fields.Integer(metadata={"description": "429 only: seconds"})


# Ids are integers that fit every database's INTEGER column (PostgreSQL's is 32-bit).
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<id:name>` in routes: a positive id; anything larger than a row id can be is a 404 at
    routing, never a database error."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)


class TextConverter(UnicodeConverter):
    """`<name>` and `<string:name>` in routes: a path segment, but never one holding a NUL, which a
    database cannot even compare with (PostgreSQL refuses it): such a path is a 404 at routing."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\x00]")


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        app.url_map.converters["id"] = IdConverter
        app.url_map.converters["default"] = app.url_map.converters["string"] = TextConverter
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.register_converter(
            IdConverter, lambda converter: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
        )

    def _register_error_handlers(self):
        errors.register_error_handlers(self._app)

    def _register_responses(self):
        # Error responses are problem+json in the document as on the wire.
        saved = self.DEFAULT_RESPONSE_CONTENT_TYPE
        self.DEFAULT_RESPONSE_CONTENT_TYPE = errors.PROBLEM_MIMETYPE
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = saved

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        self.spec.components.security_scheme(
            "bearerAuth",
            {"type": "http", "scheme": "bearer", "description": "`<id>|<secret>` personal access token"},
        )
        self.spec.options["security"] = [{"bearerAuth": []}]


class ArgumentsParser(FlaskParser):
    # Query strings are as strict as bodies: a mistyped filter (`?projectID=3`) is a 422 naming it,
    # not a list silently unfiltered. (webargs would drop unknown query keys.)
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE, "querystring": ma.RAISE}


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()

    def __init__(self, *args, **kwargs):
        from runner import idempotency

        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(idempotency.document)

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        """smorest's, and a body the document calls required is required: webargs alone would
        read a missing body as `{}` and let a bodiless PUT through as an empty update.
        Views whose body is optional say `required=False` (and the document says so too)."""
        parse = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return parse

        def decorator(func):
            parsing_view = parse(func)

            @functools.wraps(parsing_view)
            def view(*args, **kwargs):
                if not request.get_data(cache=True):
                    raise errors.ValidationFailed(
                        {"_schema": ["A JSON body is required."]}, detail="Send the request body as JSON."
                    )
                return parsing_view(*args, **kwargs)

            return view

        return decorator

    def requires(self, ability=None, *, admin=False, stream=False):
        """Declare that a view needs an authenticated token, holding `ability` when given, and
        an admin user when `admin`. Enforced by `runner.auth.guard` before any argument parsing,
        so a caller who may not act learns nothing about what a valid body would be. `stream`
        views also take a `?streamToken=` (POST /api/auth/stream-token) instead of the header."""

        def decorator(func):
            setattr(func, ABILITY_ATTR, ability)
            setattr(func, ADMIN_ATTR, admin)
            setattr(func, STREAM_ATTR, stream)
            func = self.problem_response(401, "Missing, invalid, expired or revoked token")(func)
            if ability or admin:
                needs = " and ".join(filter(None, (ability and f"`{ability}`", admin and "an admin user")))
                func = self.problem_response(403, f"Needs {needs}")(func)
            return func

        return decorator

    def public(self, func):
        """Declare that a view needs no token."""
        setattr(func, PUBLIC_ATTR, True)
        return self.doc(security=[])(func)

    def problem_responses(self, *statuses):
        """Document further problem+json answers a view gives (404, 409, 422 …)."""

        def decorator(func):
            for status in statuses:
                func = self.problem_response(status)(func)
            return func

        return decorator

    def problem_response(self, status, description=None):
        """Document one problem+json answer, body schema and media type included."""
        return self.alt_response(
            status,
            schema=ProblemSchema,
            content_type=errors.PROBLEM_MIMETYPE,
            description=description or errors._phrase(status),
        )


def view_function(endpoint, method):
    """The function that handles `method` on `endpoint` (the method of a MethodView)."""
    view = current_app.view_functions.get(endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    name = "get" if method == "HEAD" else method.lower()
    return getattr(view_class, name, None)


# --- cursor pagination ----------------------------------------------------------------------


class PageArgs(Schema):
    cursor = ma.fields.String(metadata={"description": "Opaque cursor from `meta.nextCursor`"})
    limit = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=200), metadata={"description": "1–200"}
    )


class PageMetaSchema(Schema):
    next_cursor = ma.fields.String(allow_none=True)


@functools.cache
def page_of(item_schema):
    """`{data: [item], meta: {nextCursor}}` schema for an item schema class."""
    return type(
        f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
        (Schema,),
        {
            "data": ma.fields.List(ma.fields.Nested(item_schema)),
            "meta": ma.fields.Nested(PageMetaSchema),
        },
    )


def _cursor_serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="runner.cursor")


def paginate(query, id_column, args, *, newest_first=True):
    """One page of the select `query` ordered by the unique integer `id_column`, newest first
    unless told otherwise.

    Keyset, not offset: the cursor holds the last id seen (signed, and bound to the endpoint), so
    rows inserted while a client pages never shift or repeat what it sees.
    """
    limit = args.get("limit") or current_app.config["PAGE_DEFAULT_LIMIT"]
    cursor = args.get("cursor")
    if cursor:
        try:
            position = _cursor_serializer().loads(cursor)
        except BadSignature:
            position = None
        if not isinstance(position, dict) or position.get("e") != request.endpoint:
            raise errors.ApiError(
                "The cursor was not issued by this list; use meta.nextCursor unchanged.",
                status=400,
                slug="invalid-cursor",
                title="Invalid cursor",
            )
        after = position["after"]
        query = query.where(id_column < after if newest_first else id_column > after)
    order = id_column.desc() if newest_first else id_column.asc()
    rows = list(db.session.scalars(query.order_by(order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_id = getattr(rows[-1], id_column.key)
        next_cursor = _cursor_serializer().dumps({"e": request.endpoint, "after": last_id})
    return {"data": rows, "meta": {"next_cursor": next_cursor}}
