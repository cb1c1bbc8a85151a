"""The adapter interface: how a provider kind is started and how its output becomes agent events.

An adapter is pure translation — no Flask, no database, no I/O. The agent job builds the argv and
environment with it, runs them in an `AgentProcess`, feeds each stdout line to `parse_line` and
stores what comes back as agent events (SPEC §7).
"""
import json
import re

SEVERITIES = ("debug", "info", "warning", "error")
MESSAGE_MAX = 4000  # characters of a message; the full text stays in `data` where it matters
# Runner's own configuration (RUNNER_SECRET_KEY, RUNNER_DATABASE_URL, RUNNER_REDIS_URL, secret server
# params given through the environment) is the server's: an agent runs code it was told to run by a
# model, and gets only what its provider needs (adapters add their own API key and endpoint).
SERVER_VARIABLE_PREFIX = "RUNNER_"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # what runner.api refuses in requests, for the same reason


def event(event_type, message="", severity="info", path=None, **data):
    """One agent event as adapters produce it, its text fit for any database (see `storable`)."""
    message = "" if message is None else storable(str(message))
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return {
        "event_type": event_type, "severity": severity, "message": message, "path": storable(path), "data": storable(data),
    }


def storable(value):
    """`value` (text, or lists and dicts holding text) with NUL and unpaired surrogates replaced by
    U+FFFD. An agent prints what it likes (a `cat` of a binary file, a JSON "\\u0000" or "\\ud800"),
    and PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate: stored as is, one
    such line would fail the run."""
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return value  # the common case, checked in C: no surrogate can be ASCII
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        if not value:
            return value
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value


def agent_environ(base_env):
    """`base_env` without Runner's own configuration: the environment every agent starts from."""
    return {name: value for name, value in base_env.items() if not name.startswith(SERVER_VARIABLE_PREFIX)}


def substitute(command, prompt, model):
    """The provider row's argv with `{prompt}` and `{model}` replaced (inside any argument, no shell).

    An argument that is exactly "{model}" is dropped together with a preceding option when no model is
    given (["--model", "{model}"] → []), so a row may name the model flag without forcing a model.
    """
    argv = []
    for arg in command:
        arg = str(arg)
        if "{model}" in arg and not model:
            if arg == "{model}" and argv and argv[-1].startswith("-"):
                argv.pop()
            continue
        argv.append(arg.replace("{prompt}", prompt).replace("{model}", model or ""))
    return argv


def loads(line):
    """The JSON object on a line, or None (blank, not JSON, not an object)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Adapter:
    """Base of every provider kind; subclasses override what differs."""

    kind = None

    def __init__(self, cwd=None):
        self.cwd = cwd  # the agent's working directory: file paths in events are relative to it

    def argv(self, command, prompt, model=None, safe_mode=False, base_url=None):
        """The argv to run for this provider row's `command` (a list), prompt, model and mode.

        `base_url` is for CLIs that take their endpoint as a flag rather than from the environment
        (codex); pass the same value to `env`.
        """
        return substitute(command, prompt, model)

    def env(self, base_env, api_key=None, base_url=None):
        """The agent's environment: `base_env` without Runner's own configuration, plus the
        credentials and endpoint, for the agent only."""
        return agent_environ(base_env)

    def parse_line(self, line):
        """Translate one stdout line into zero or more agent events. Never raises."""
        line = line.rstrip("\r\n")
        return [event("log", line)] if line.strip() else []

    def parse_stderr_line(self, line):
        line = line.rstrip("\r\n")
        return [event("log", line, "warning")] if line.strip() else []

    def outcome(self, exit_code, events_seen):
        """("completed" | "failed", summary text or None) from the exit code and the events produced."""
        if exit_code != 0:
            return "failed", _last_error(events_seen) or f"The agent exited with code {exit_code}."
        summary = _last(events_seen, "summary_ready") or _last(events_seen, "agent_message")
        return "completed", summary


def _last(events, event_type):
    for item in reversed(list(events)):
        if item["event_type"] == event_type and item["message"]:
            return item["data"].get("text") or item["message"]
    return None


def _last_error(events):
    for item in reversed(list(events)):
        if item["event_type"] == "error" and item["message"]:
            return item["message"]
    return None
