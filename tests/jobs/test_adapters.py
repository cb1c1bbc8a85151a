"""Adapters as pure translation: the command kind, placeholders, and lines no adapter may choke on."""
import sys

import pytest

from agentrun import run_agent
from jobs.providers import adapter_for

ODD_LINES = ["", "   ", "not json", "{", "[1,2]", "null", '{"type": 3}', '{"type":"assistant","message":null}',
             '{"type":"assistant","message":{"content":"just text"}}', '{"type":"user","message":{"content":[1,{}]}}',
             '{"type":"item.completed","item":{"type":"file_change","changes":[null,{"kind":"add"}]}}',
             '{"type":"item.completed"}', '{"type":"result"}', '{"type":"turn.completed","usage":null}',
             '{"type":"system"}', "\x00\xff binary-ish", '{"type":"user","tool_use_result":"Error: denied"}']


@pytest.mark.parametrize("kind", ["claude-code", "codex", "command"])
def test_no_line_makes_an_adapter_raise(kind):
    adapter = adapter_for(kind)
    for line in ODD_LINES:
        for item in adapter.parse_line(line):
            assert set(item) == {"event_type", "severity", "message", "path", "data"}
            assert item["severity"] in ("debug", "info", "warning", "error")
    assert adapter.parse_line("plain words")[0]["event_type"] == "log"


def test_unknown_kind():
    with pytest.raises(ValueError):
        adapter_for("gemini")


def test_command_argv_replaces_placeholders_without_a_shell():
    adapter = adapter_for("command")
    assert adapter.argv(["agent", "--model", "{model}", "--prompt={prompt}"], "a; rm -rf /", "m1") == [
        "agent", "--model", "m1", "--prompt=a; rm -rf /"]
    assert adapter.argv(["agent", "--model", "{model}", "{prompt}"], "p", None) == ["agent", "p"]
    assert adapter.env({"A": "1"}, api_key="k") == {"A": "1"}


@pytest.mark.parametrize("exit_code, status", [(0, "completed"), (4, "failed")])
def test_command_run_lines_become_logs_and_the_exit_code_decides(tmp_path, exit_code, status):
    adapter = adapter_for("command")
    code = f"import sys\nprint('working on', sys.argv[1])\nprint('done')\nsys.exit({exit_code})"
    argv = adapter.argv([sys.executable, "-c", code, "{prompt}"], "the task", None)
    events, code, stderr = run_agent(adapter, argv, tmp_path, {})
    assert [(e["event_type"], e["severity"], e["message"]) for e in events] == [
        ("log", "info", "working on the task"), ("log", "info", "done")]
    assert adapter.outcome(code, events)[0] == status
    assert adapter.parse_stderr_line("oops") == [
        {"event_type": "log", "severity": "warning", "message": "oops", "path": None, "data": {}}]
