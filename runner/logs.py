"""Structured logs: one JSON object a line, carrying the request id (and method and path) inside a
request and the run id inside a run's job, so one run or one request can be followed across the
server and the workers.

The request id is the client's `X-Request-ID` when it is a sane token, else a new one; it is sent
back in the response's `X-Request-ID`. `RUNNER_LOG_FORMAT` = `json` (default) or `text`; the tests
leave logging alone.
"""
import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import uuid

from flask import g, has_request_context, request

_RUN_ID = contextvars.ContextVar("runner_run_id", default=None)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HANDLER_NAME = "runner"


@contextlib.contextmanager
def run_context(run_id):
    """Every log line inside carries `runId`."""
    token = _RUN_ID.set(run_id)
    try:
        yield
    finally:
        _RUN_ID.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry.update(requestId=g.get("request_id"), method=request.method, path=request.path)
        run_id = _RUN_ID.get()
        if run_id is not None:
            entry["runId"] = run_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    """One record, one line: line breaks in a message (a request path, a git error, a run title)
    are written as `\\r` and `\\n`, so no text can start a line that looks like a record of its own.
    A traceback keeps its own lines, after the record's."""

    def formatMessage(self, record):
        message = record.message
        record.message = message.replace("\r", "\\r").replace("\n", "\\n")
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def format(self, record):
        text = super().format(record)
        ids = []
        if has_request_context() and g.get("request_id"):
            ids.append(f"request={g.request_id}")
        if _RUN_ID.get() is not None:
            ids.append(f"run={_RUN_ID.get()}")
        return f"{text} [{' '.join(ids)}]" if ids else text


def configure(log_format, level="INFO"):
    """Install Runner's handler on the root logger, once per process."""
    if log_format not in ("json", "text"):
        return
    root = logging.getLogger()
    if any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app):
    configure(app.config.get("LOG_FORMAT"), app.config.get("LOG_LEVEL", "INFO"))
    app.before_request(_assign_request_id)
    app.after_request(_send_request_id)


def _assign_request_id():
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _send_request_id(response):
    if g.get("request_id"):
        response.headers["X-Request-ID"] = g.request_id
    return response
