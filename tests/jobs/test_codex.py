"""The real Codex CLI against a scripted OpenAI Responses server: its JSONL becomes agent events."""
import pytest

from agentrun import base_env, of_type, run_agent
from jobs.providers import adapter_for
from model_server import ScriptedModelServer

COMMAND = ["codex", "exec", "--json", "{prompt}"]  # the seeded row
# Codex offers no apply_patch tool for a model it has no metadata for; it intercepts apply_patch
# given to its shell tool instead, and reports it as a file_change like its own tool would.
PATCH = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\nEOF\n"
FINAL = "Created hello.txt and listed the files."
SCRIPT = [
    lambda wd: ("tool", "exec_command", {"cmd": PATCH, "workdir": wd}),
    lambda wd: ("tool", "exec_command", {"cmd": "ls", "workdir": wd}),
    lambda wd: ("text", FINAL),
]


@pytest.fixture
def model_server():
    server = ScriptedModelServer(SCRIPT, "openai")
    yield server
    server.close()


def run_codex(agent_bin, model_server, worktree, agent_home, safe_mode):
    adapter = adapter_for("codex", cwd=str(worktree))
    url = model_server.url + "/v1"
    argv = adapter.argv([agent_bin["codex"], *COMMAND[1:]], "Create hello.txt", "gpt-5-codex", safe_mode, base_url=url)
    env = adapter.env(base_env(agent_home), api_key="sk-openai-test-key", base_url=url)
    events, code, stderr = run_agent(adapter, argv, worktree, env)
    assert code == 0, stderr
    return adapter, events


def test_a_whole_task_becomes_the_right_events(agent_bin, model_server, worktree, agent_home):
    adapter, events = run_codex(agent_bin, model_server, worktree, agent_home, safe_mode=False)

    assert (worktree / "hello.txt").read_text() == "hello\n"
    assert [(e["event_type"], e["path"]) for e in events if e["event_type"].startswith("file_")] == [
        ("file_created", "hello.txt")]
    [started] = of_type(events, "command_started")
    [finished] = of_type(events, "command_finished")
    assert started["data"]["command"].endswith("ls") and finished["data"]["exit_code"] == 0
    assert "hello.txt" in finished["data"]["stdout"]
    assert [e["message"] for e in of_type(events, "agent_message")] == [FINAL]
    [usage] = of_type(events, "token_usage")
    assert usage["data"]["input_tokens"] > 0 and usage["data"]["output_tokens"] > 0
    assert not of_type(events, "error")
    assert adapter.outcome(0, events) == ("completed", FINAL)


def test_safe_mode_takes_the_shell_away(agent_bin, model_server, worktree, agent_home):
    adapter, events = run_codex(agent_bin, model_server, worktree, agent_home, safe_mode=True)

    offered = {tool.get("name") or tool.get("type") for body in model_server.main_requests for tool in body["tools"]}
    assert model_server.main_requests and not offered & {"exec_command", "shell", "web_search", "write_stdin"}
    assert not of_type(events, "command_started") and not (worktree / "hello.txt").exists()


def test_argv_env_and_failures(tmp_path):
    adapter = adapter_for("codex")
    argv = adapter.argv(COMMAND, "review", "gpt-5", safe_mode=False, base_url="http://127.0.0.1:9/v1/")
    assert argv[:3] == ["codex", "exec", "--json"] and argv[-2:] == ["--", "review"]
    assert argv[argv.index("-m") + 1] == "gpt-5"
    assert 'base_url = "http://127.0.0.1:9/v1"' in " ".join(argv) and "model_provider=local" in argv
    safe = adapter.argv(COMMAND, "p", None, safe_mode=True)
    assert safe[safe.index("--sandbox") + 1] == "workspace-write" and "-m" not in safe
    assert "--dangerously-bypass-approvals-and-sandbox" not in safe
    env = adapter.env({"HOME": str(tmp_path)}, api_key="k")
    assert env["OPENAI_API_KEY"] == "k" and (tmp_path / ".codex").is_dir() == (env["CODEX_HOME"] == str(tmp_path / ".codex"))
    events = adapter.parse_line('{"type":"turn.failed","error":{"message":"stream disconnected"}}')
    assert [e["event_type"] for e in events] == ["error"] and adapter.outcome(0, events) == ("failed", "stream disconnected")
