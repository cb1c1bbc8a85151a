"""Agent provider adapters: one per provider kind, plus the agent process plumbing (`process.py`)."""
from jobs.providers.base import Adapter, event
from jobs.providers.claude import ClaudeCodeAdapter
from jobs.providers.codex import CodexAdapter
from jobs.providers.command import CommandAdapter
from jobs.providers.process import AgentProcess

ADAPTERS = {"claude-code": ClaudeCodeAdapter, "codex": CodexAdapter, "command": CommandAdapter}

__all__ = ["ADAPTERS", "Adapter", "AgentProcess", "adapter_for", "event"]


def adapter_for(kind, cwd=None):
    """A fresh adapter for a provider kind (adapters keep per-run state, e.g. pending tool calls)."""
    try:
        cls = ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"Unknown agent provider kind {kind!r}.") from None
    return cls(cwd=cwd)
