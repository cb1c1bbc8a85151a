"""The real Claude Code CLI against a scripted Anthropic server: its stream-json becomes agent events."""
import os

import pytest

from agentrun import base_env, of_type, run_agent
from jobs.providers import adapter_for
from model_server import ScriptedModelServer

COMMAND = ["claude", "-p", "{prompt}", "--output-format", "stream-json", "--verbose"]  # the seeded row

# Write a file, edit it, list the directory, then report: what a small real task looks like.
SCRIPT = [
    lambda wd: ("tool", "Write", {"file_path": f"{wd}/hello.txt", "content": "hello\n"}),
    lambda wd: ("tool", "Edit", {"file_path": f"{wd}/hello.txt", "old_string": "hello", "new_string": "hello world"}),
    lambda wd: ("tool", "Bash", {"command": "ls", "description": "List files"}),
    lambda wd: ("text", "Wrote hello.txt, edited it and listed the files."),
]


@pytest.fixture
def model_server():
    server = ScriptedModelServer(SCRIPT, "anthropic")
    yield server
    server.close()


def run_claude(agent_bin, model_server, worktree, agent_home, safe_mode):
    adapter = adapter_for("claude-code", cwd=str(worktree))
    argv = adapter.argv([agent_bin["claude"], *COMMAND[1:]], "Write hello.txt", "sonnet", safe_mode)
    env = adapter.env(base_env(agent_home), api_key="sk-ant-test-key", base_url=model_server.url)
    events, code, stderr = run_agent(adapter, argv, worktree, env)
    assert code == 0, stderr
    return adapter, events


def test_a_whole_task_becomes_the_right_events(agent_bin, model_server, worktree, agent_home):
    adapter, events = run_claude(agent_bin, model_server, worktree, agent_home, safe_mode=False)

    assert (worktree / "hello.txt").read_text() == "hello world\n"
    assert events[0]["event_type"] == "log" and events[0]["data"]["session_id"]
    assert [(e["event_type"], e["path"]) for e in events if e["event_type"].startswith("file_")] == [
        ("file_created", "hello.txt"), ("file_updated", "hello.txt"),
    ]
    assert [e["data"]["name"] for e in of_type(events, "tool_call")] == ["Write", "Edit", "Bash"]
    assert len(of_type(events, "tool_result")) == 3
    [started] = of_type(events, "command_started")
    [finished] = of_type(events, "command_finished")
    assert started["data"]["command"] == finished["data"]["command"] == "ls"
    assert finished["data"]["exit_code"] == 0 and "hello.txt" in finished["data"]["stdout"]
    assert [e["message"] for e in of_type(events, "agent_message")] == [SCRIPT[-1](None)[1]]
    [usage] = of_type(events, "token_usage")
    assert usage["data"]["input_tokens"] > 0 and usage["data"]["output_tokens"] > 0
    assert usage["data"]["total_cost_usd"] is not None
    assert of_type(events, "summary_ready")[0]["message"] == SCRIPT[-1](None)[1]
    assert not of_type(events, "error")
    assert adapter.outcome(0, events) == ("completed", SCRIPT[-1](None)[1])
    assert all(e["severity"] in ("debug", "info", "warning", "error") for e in events)
    # The key and endpoint reached the CLI (it talked to our server with them), only via its env.
    assert model_server.main_requests and "sk-ant-test-key" not in " ".join(adapter.argv(COMMAND, "p", None, False))


def test_safe_mode_keeps_the_agent_off_the_shell(agent_bin, model_server, worktree, agent_home):
    adapter, events = run_claude(agent_bin, model_server, worktree, agent_home, safe_mode=True)

    assert (worktree / "hello.txt").read_text() == "hello world\n"  # file edits still work
    assert all("Bash" not in [t["name"] for t in body["tools"]] for body in model_server.main_requests)
    assert all("WebFetch" not in [t["name"] for t in body["tools"]] for body in model_server.main_requests)
    [finished] = of_type(events, "command_finished")
    assert finished["data"]["refused"] is True and finished["data"]["exit_code"] is None
    bash_result = [e for e in of_type(events, "tool_result") if e["data"]["name"] == "Bash"]
    assert bash_result[0]["data"]["is_error"] and "No such tool available" in bash_result[0]["message"]
    assert sorted(os.listdir(worktree)) == [".git", "README.md", "hello.txt"]


def test_failing_result_is_a_failed_outcome():
    adapter = adapter_for("claude-code")
    events = adapter.parse_line('{"type":"result","subtype":"error_max_turns","is_error":true,"usage":{},"errors":["Reached max turns"]}')
    assert [e["event_type"] for e in events] == ["token_usage", "error"]
    assert adapter.outcome(0, events)[0] == "failed"
    assert adapter.outcome(1, [])[0] == "failed"


def test_argv_and_env():
    adapter = adapter_for("claude-code")
    argv = adapter.argv(COMMAND, "-rf all the things", "opus", safe_mode=False)
    assert argv[:6] == ["claude", "-p", "-rf all the things", "--output-format", "stream-json", "--verbose"]
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert "Bash" in argv[argv.index("--allowedTools") + 1].split(",")
    assert "--dangerously-skip-permissions" not in argv
    safe = adapter.argv(["claude"], "p", None, safe_mode=True)
    assert safe[:3] == ["claude", "-p", "p"] and "--model" not in safe and "--allowedTools" not in safe
    assert "Bash" in safe[safe.index("--disallowedTools") + 1].split(",")
    env = adapter.env({"PATH": "/bin"}, api_key="k", base_url="http://127.0.0.1:9/")
    assert env == {"PATH": "/bin", "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
