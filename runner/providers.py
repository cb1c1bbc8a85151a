"""Agent providers: the seeded rows, availability on this machine, and admin changes."""
import shutil

from runner.errors import NotFound, ValidationFailed
from runner.extensions import db
from runner.models import AgentProvider

# Seeded once; an admin's later changes are kept (seeding only adds missing keys).
# `{prompt}` and `{model}` in a command are replaced per run by the adapter.
DEFAULTS = (
    {
        "key": "claude-code",
        "name": "Claude Code",
        "kind": "claude-code",
        "enabled": True,
        "command": ["claude", "-p", "{prompt}", "--output-format", "stream-json", "--verbose"],
        "models": ["sonnet", "opus", "haiku"],
    },
    {
        "key": "codex",
        "name": "Codex",
        "kind": "codex",
        "enabled": True,
        "command": ["codex", "exec", "--json", "{prompt}"],
        "models": ["gpt-5-codex", "gpt-5"],
    },
    {
        "key": "command",
        "name": "Command",
        "kind": "command",
        # Off until an admin configures an argv: there is no sensible default agent command.
        "enabled": False,
        "command": [],
        "models": [],
    },
)


def seed():
    """Insert the default providers that are missing; return the keys added."""
    existing = set(db.session.scalars(db.select(AgentProvider.key)))
    added = []
    for spec in DEFAULTS:
        if spec["key"] not in existing:
            db.session.add(AgentProvider(config={}, **spec))
            added.append(spec["key"])
    db.session.commit()
    return added


def is_available(provider):
    """Whether the provider's executable is found on PATH (or is an executable path)."""
    return bool(provider.command) and shutil.which(provider.command[0]) is not None


def get_or_404(key):
    provider = db.session.scalar(db.select(AgentProvider).where(AgentProvider.key == key))
    if provider is None:
        raise NotFound(f"No agent provider '{key}'.")
    return provider


def update(provider, changes):
    """Apply `{enabled?, command?, models?}` (already type-checked by the schema)."""
    command = changes.get("command", provider.command)
    enabled = changes.get("enabled", provider.enabled)
    if enabled and not command:
        raise ValidationFailed({"command": ["An enabled provider needs a command (a non-empty argv list)."]})
    for field in ("enabled", "command", "models"):
        if field in changes:
            setattr(provider, field, changes[field])
    db.session.commit()
    return provider
