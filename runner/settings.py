"""Server params: a typed registry of run-time settings, merged from defaults, environment and database.

A value comes from (highest first) the `server_params` table, the environment variable named after
the key (`safety.autoGitPush` -> `RUNNER_SAFETY_AUTO_GIT_PUSH`), then the registry default. Secret
values are encrypted at rest with a key derived from SECRET_KEY and are never sent back: the API
shows `"••••"` and `isSet`.
"""
import base64
import dataclasses
import hashlib
import logging
import os
import re

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from runner.errors import ValidationFailed
from runner.extensions import db
from runner.models import ServerParam

log = logging.getLogger(__name__)

MASK = "••••"


@dataclasses.dataclass(frozen=True)
class Param:
    key: str
    type: str  # "boolean" | "integer" | "string"
    default: object
    description: str
    secret: bool = False
    minimum: int | None = None

    @property
    def env_name(self):
        snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.key).replace(".", "_")
        return "RUNNER_" + snake.upper()


REGISTRY = {
    p.key: p
    for p in (
        Param("safety.autoGitPush", "boolean", False, "Allow POST /runs/{run}/push at all."),
        Param("runs.maxConcurrent", "integer", 2, "Runs executing at once across workers.", minimum=1),
        Param("runs.timeoutSeconds", "integer", 3600, "Hard limit of one run attempt.", minimum=1),
        Param("runs.cancelGraceSeconds", "integer", 10, "SIGTERM to SIGKILL delay on cancel.", minimum=0),
        Param("agents.defaultProvider", "string", "claude-code", "Provider key used when a run names none."),
        Param("providers.anthropicApiKey", "string", None, "API key given to the claude CLI.", secret=True),
        Param("providers.openaiApiKey", "string", None, "API key given to the codex CLI.", secret=True),
        Param("providers.anthropicBaseUrl", "string", None, "ANTHROPIC_BASE_URL for the claude CLI."),
        Param("providers.openaiBaseUrl", "string", None, "Base URL of the model provider for codex."),
        Param("git.authorName", "string", "Runner", "Author name of commits Runner makes."),
        Param("git.authorEmail", "string", "runner@localhost", "Author email of commits Runner makes."),
        Param("git.httpsToken", "string", None, "Token for cloning/pushing private HTTPS repositories.", secret=True),
        Param("git.httpsTokenHosts", "string", None,
              "Hosts that receive git.httpsToken, comma-separated (github.com, git.example.com:8443, or a URL "
              "prefix like http://10.0.0.5:3000). Unset: the token is sent to no host."),
        Param("git.sshKeyPath", "string", None, "Private key file for SSH repository URLs."),
        Param("docs.folder", "string", "docs/ai", "Folder of the managed docs in each repository."),
        Param("docs.autoUpdate", "boolean", True,
              "Refresh the managed docs and add a CHANGELOG_AI.md entry on each completed run's branch."),
        Param("rag.tokenBudget", "integer", 2000, "Token budget of index context prefixed to prompts.", minimum=0),
        Param("notifications.enabled", "boolean", True, "Send APNs pushes when runs need attention."),
        Param("apns.keyId", "string", None, "Key ID of the APNs .p8 signing key."),
        Param("apns.teamId", "string", None, "Apple developer team ID."),
        Param("apns.topic", "string", None, "The app's bundle ID (apns-topic)."),
        Param("apns.privateKey", "string", None, "PEM text of the APNs .p8 key.", secret=True),
        Param("apns.endpoint", "string", None, "Override of Apple's APNs host (push gateways, tests)."),
        Param("apns.caBundle", "string", None, "Extra CA certificates to trust for apns.endpoint."),
    )
}


def _fernet():
    digest = hashlib.sha256(("runner.server-params:" + current_app.config["SECRET_KEY"]).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def type_error(param, value):
    """The message for a value of the wrong type, or None when it fits `param`."""
    if param.type == "boolean":
        return None if isinstance(value, bool) else "Must be a boolean (true or false)."
    if param.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "Must be an integer."
        if param.minimum is not None and value < param.minimum:
            return f"Must be at least {param.minimum}."
        return None
    if not isinstance(value, str):
        return "Must be a string."
    if param.secret and not value:
        # An empty secret would silently hide one set in the environment.
        return "Must not be empty; send null to clear it."
    return None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _from_env(param):
    """The environment's value of `param`, or None when unset or unusable.

    An unusable value (a typo such as "ture", "lots", or below the minimum) is ignored with a
    warning rather than read as something else: "perhaps" must not silently mean false.
    """
    raw = os.environ.get(param.env_name)
    if raw is None:
        return None
    if param.type == "boolean":
        word = raw.strip().lower()
        value = True if word in _TRUE else False if word in _FALSE else raw
    elif param.type == "integer":
        try:
            value = int(raw)
        except ValueError:
            value = raw
    else:
        value = raw
    if message := type_error(param, value):
        log.warning("ignoring %s: %s", param.env_name, message)
        return None
    return value


def _stored(row, param):
    if not param.secret:
        return row.value
    try:
        return _fernet().decrypt(row.value["encrypted"].encode()).decode()
    except (InvalidToken, KeyError, TypeError):
        log.warning("stored secret %s cannot be decrypted (SECRET_KEY changed?); ignoring it", param.key)
        return None


def _resolve(param, rows):
    """`(value, source)` of one param."""
    row = rows.get(param.key)
    if row is not None:
        value = _stored(row, param)
        if value is not None:
            return value, "stored"
    value = _from_env(param)
    if value is not None:
        return value, "environment"
    return param.default, "default"


def _rows():
    return {row.key: row for row in db.session.scalars(db.select(ServerParam))}


def get(key):
    """The effective value of one param, secrets in clear (for server-side use only)."""
    param = REGISTRY[key]
    row = db.session.get(ServerParam, key)
    return _resolve(param, {key: row} if row else {})[0]


def describe():
    """Every param as the API shows it: merged, secrets masked."""
    rows = _rows()
    items = []
    for param in REGISTRY.values():
        value, source = _resolve(param, rows)
        is_set = value is not None and value != ""
        items.append(
            {
                "key": param.key,
                "type": param.type,
                "value": (MASK if is_set else None) if param.secret else value,
                "default": None if param.secret else param.default,
                "secret": param.secret,
                "is_set": is_set,
                "source": source,
                "description": param.description,
            }
        )
    return items


def update(changes, user=None):
    """Apply a partial update `{key: value}`; `null` removes the stored value. 422 on any bad entry."""
    problems = {}
    for key, value in changes.items():
        param = REGISTRY.get(key)
        if param is None:
            problems[key] = ["Unknown setting."]
        elif value is not None and (message := type_error(param, value)):
            problems[key] = [message]
    if problems:
        raise ValidationFailed(problems)
    for key, value in changes.items():
        param = REGISTRY[key]
        row = db.session.get(ServerParam, key)
        if value is None:
            if row is not None:
                db.session.delete(row)
            continue
        if param.secret:
            value = {"encrypted": _fernet().encrypt(value.encode()).decode()}
        if row is None:
            row = ServerParam(key=key)
            db.session.add(row)
        row.value = value
        row.updated_by_id = user.id if user else None
    db.session.commit()
