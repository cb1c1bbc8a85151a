"""A whole run through the HTTP API with the real agent CLIs against a scripted model server on
loopback: an admin points the provider at the server through server params, a user drafts, starts
and (through the real RQ worker) runs the run, and everything is checked through the API."""
import pytest

from gitrepo import git, head, origin_url
from model_server import ScriptedModelServer

RUNS = "/api/runs"
PARAMS = "/api/settings/server-params"

CLAUDE_FINAL = "Wrote hello.txt, edited it and listed the files."
CLAUDE_SCRIPT = [
    lambda wd: ("tool", "Write", {"file_path": f"{wd}/hello.txt", "content": "hello\n"}),
    lambda wd: ("tool", "Edit", {"file_path": f"{wd}/hello.txt", "old_string": "hello", "new_string": "hello world"}),
    lambda wd: ("tool", "Bash", {"command": "ls", "description": "List files"}),
    lambda wd: ("text", CLAUDE_FINAL),
]

CODEX_PATCH = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\nEOF\n"
CODEX_FINAL = "Created hello.txt and listed the files."
CODEX_SCRIPT = [
    lambda wd: ("tool", "exec_command", {"cmd": CODEX_PATCH, "workdir": wd}),
    lambda wd: ("tool", "exec_command", {"cmd": "ls", "workdir": wd}),
    lambda wd: ("text", CODEX_FINAL),
]


@pytest.fixture
def agent_environment(monkeypatch, agent_home):
    """The job hands the agent this process's environment (minus git hazards): give it a HOME of its
    own so no user settings, sessions or credentials leak in or out."""
    monkeypatch.setenv("HOME", str(agent_home))
    monkeypatch.setenv("LANG", "C.UTF-8")
    return agent_home


@pytest.fixture
def project(app, user_api, tmp_path, run_jobs):
    url = origin_url(tmp_path / "origin")
    response = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": url})
    assert response.status_code in (201, 202), response.get_json()
    run_jobs()
    created = user_api.get(f"/api/projects/{response.get_json()['id']}").get_json()
    assert created["status"] == "ready", created
    return created["id"]


def _events(api, run_id):
    found, cursor = [], None
    while True:
        query = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{RUNS}/{run_id}/events", query_string=query).get_json()
        found += page["data"]
        cursor = (page.get("page") or {}).get("nextCursor") or page.get("nextCursor")
        if not cursor:
            return found


def _of(events, event_type):
    return [e for e in events if e["eventType"] == event_type]


def _whole_run(app, admin_api, user_api, project, run_jobs, *, agent, model, prompt):
    from runner import projects

    with app.app_context():
        repo = projects.repo_dir(project)
    main_head = head(repo)
    draft = user_api.post(RUNS, json={"projectId": project, "title": "Hello file", "prompt": prompt,
                                      "selectedAgent": agent, "selectedModel": model})
    assert draft.status_code == 201, draft.get_json()
    run_id = draft.get_json()["id"]
    started = user_api.post(f"{RUNS}/{run_id}/start")
    assert started.status_code == 202, started.get_json()
    run_jobs()

    done = user_api.get(f"{RUNS}/{run_id}").get_json()
    events = _events(user_api, run_id)
    errors = [(e["message"], e["data"]) for e in events if e["severity"] == "error" or e["eventType"] == "error"]
    assert done["status"] == "completed", (done, errors, [(e["eventType"], e["message"][:200]) for e in events])

    from jobs.runs import worktree_path
    from runner.extensions import db
    from runner.models import Run

    with app.app_context():
        worktree = worktree_path(db.session.get(Run, run_id))
    # Files land in the run's worktree on its branch; the project's checkout does not move.
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == done["branch"]
    assert not (repo / "hello.txt").exists() and head(repo) == main_head

    changes = [(e["data"]["from"], e["data"]["to"]) for e in _of(events, "status_changed")]
    assert changes == [(None, "draft"), ("draft", "queued"), ("queued", "running"), ("running", "completed")]
    assert [e["data"]["kind"] for e in _of(events, "snapshot_created")] == ["pre_run", "post_run"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    # Order of the job's steps: running, pre_run snapshot, agent, post_run snapshot, completed; one
    # summary (the CLI's own final result, or the job's when the CLI gives none) before the end.
    kinds = [e["eventType"] for e in events]
    assert kinds.index("snapshot_created") < kinds.index("agent_message")
    assert kinds.count("summary_ready") == 1, kinds
    assert kinds.index("summary_ready") < len(kinds) - 1
    assert kinds[-1] == "status_changed"
    snapshots = user_api.get(f"{RUNS}/{run_id}/snapshots")
    if snapshots.status_code == 200:
        assert sorted(s["kind"] for s in snapshots.get_json()["data"]) == ["post_run", "pre_run"]
    return run_id, done, events, worktree


def test_a_whole_claude_code_run_through_the_api(app, admin_api, user_api, project, run_jobs, agent_bin,
                                                 agent_environment):
    server = ScriptedModelServer(CLAUDE_SCRIPT, "anthropic")
    try:
        set_params = admin_api.put(PARAMS, json={"providers.anthropicBaseUrl": server.url,
                                                 "providers.anthropicApiKey": "sk-ant-whole-run"})
        assert set_params.status_code == 200, set_params.get_json()
        command = [agent_bin["claude"], "-p", "{prompt}", "--output-format", "stream-json", "--verbose"]
        provider = admin_api.put("/api/settings/providers/claude-code", json={"enabled": True, "command": command})
        assert provider.status_code == 200, provider.get_json()

        run_id, done, events, worktree = _whole_run(app, admin_api, user_api, project, run_jobs,
                                                    agent="claude-code", model="sonnet", prompt="Write hello.txt")
    finally:
        server.close()

    assert (worktree / "hello.txt").read_text() == "hello world\n"
    assert [(e["eventType"], e["path"]) for e in events if e["eventType"].startswith("file_")] == [
        ("file_created", "hello.txt"), ("file_updated", "hello.txt")]
    [started] = _of(events, "command_started")
    [finished] = _of(events, "command_finished")
    assert started["data"]["command"] == finished["data"]["command"] == "ls"
    assert finished["data"]["exit_code"] == 0 and "hello.txt" in finished["data"]["stdout"]
    assert [e["message"] for e in _of(events, "agent_message")] == [CLAUDE_FINAL]
    [usage] = _of(events, "token_usage")
    assert usage["data"]["input_tokens"] > 0 and usage["data"]["output_tokens"] > 0
    assert CLAUDE_FINAL in [e["message"] for e in _of(events, "summary_ready")]
    assert not _of(events, "error")
    # The server params reached the CLI: it talked to our server with our key, never the public API.
    assert server.main_requests, "the claude CLI never reached the scripted server"
    assert all(body.get("model") for body in server.main_requests)
    # The key is a secret: never in an event.
    assert "sk-ant-whole-run" not in str(events)
    _check_telemetry(user_api, run_id, expect_command="ls")


def test_a_whole_codex_run_through_the_api(app, admin_api, user_api, project, run_jobs, agent_bin, agent_environment):
    server = ScriptedModelServer(CODEX_SCRIPT, "openai")
    try:
        set_params = admin_api.put(PARAMS, json={"providers.openaiBaseUrl": server.url + "/v1",
                                                 "providers.openaiApiKey": "sk-openai-whole-run"})
        assert set_params.status_code == 200, set_params.get_json()
        command = [agent_bin["codex"], "exec", "--json", "{prompt}"]
        provider = admin_api.put("/api/settings/providers/codex", json={"enabled": True, "command": command})
        assert provider.status_code == 200, provider.get_json()

        run_id, done, events, worktree = _whole_run(app, admin_api, user_api, project, run_jobs,
                                                    agent="codex", model="gpt-5-codex", prompt="Create hello.txt")
    finally:
        server.close()

    assert (worktree / "hello.txt").read_text() == "hello\n"
    assert [(e["eventType"], e["path"]) for e in events if e["eventType"].startswith("file_")] == [
        ("file_created", "hello.txt")]
    [started] = _of(events, "command_started")
    [finished] = _of(events, "command_finished")
    assert started["data"]["command"].endswith("ls") and finished["data"]["exit_code"] == 0
    assert [e["message"] for e in _of(events, "agent_message")] == [CODEX_FINAL]
    [usage] = _of(events, "token_usage")
    assert usage["data"]["input_tokens"] > 0 and usage["data"]["output_tokens"] > 0
    assert CODEX_FINAL in [e["message"] for e in _of(events, "summary_ready")]
    assert not _of(events, "error")
    assert server.main_requests, "the codex CLI never reached the scripted server"
    assert "sk-openai-whole-run" not in str(events)
    _check_telemetry(user_api, run_id, expect_command="ls")


def _check_telemetry(api, run_id, expect_command):
    """The telemetry endpoints, where they exist yet (issue 4 §7): files, diff, commands, summary."""
    files = api.get(f"{RUNS}/{run_id}/files")
    if files.status_code == 200:
        assert "hello.txt" in [f["path"] for f in files.get_json()["data"]]
    diff = api.get(f"{RUNS}/{run_id}/diff")
    if diff.status_code == 200:
        assert "hello.txt" in diff.get_data(as_text=True)
    commands = api.get(f"{RUNS}/{run_id}/commands")
    if commands.status_code == 200:
        assert any(c["command"].endswith(expect_command) for c in commands.get_json()["data"])
    summary = api.get(f"{RUNS}/{run_id}/summary")
    if summary.status_code == 200:
        assert "hello.txt" in [f["path"] for f in summary.get_json()["changedFiles"]]
