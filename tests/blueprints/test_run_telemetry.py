"""What a run did, over HTTP: its changed files (with per-file diffs), the aggregate diff, its
snapshots, the commands its agent ran (with signed links to their output), the review summary, and
batched event ingestion — all through the real agent job on real worktrees.

The agent is a script speaking Claude Code's stream-json, configured as the `claude-code` provider's
command: it really writes, edits and deletes files in its worktree and really runs a shell command,
then reports each step the way the CLI does, so the events go through the same adapter and job path
as the real CLI's.
"""
import stat
import subprocess
import sys

import pytest
import sqlalchemy as sa

from gitrepo import origin_url
from helpers import assert_problem, wait_for, worker_env

RUNS = "/api/runs"

AGENT = r"""#!{python}
import json, pathlib, subprocess, sys, time

prompt = sys.argv[sys.argv.index("-p") + 1]
cwd = pathlib.Path.cwd()


def say(message):
    print(json.dumps(message), flush=True)


def tool(tool_id, name, tool_input, content, result, is_error=False):
    say({{"type": "assistant", "message": {{"content": [
        {{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}}]}}}})
    say({{"type": "user", "tool_use_result": result, "message": {{"content": [
        {{"type": "tool_result", "tool_use_id": tool_id, "content": content, "is_error": is_error}}]}}}})


def write(tool_id, relative, text):
    path = cwd / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    path.write_text(text)
    tool(tool_id, "Write", {{"file_path": str(path), "content": text}}, "ok",
         {{"type": "create" if created else "update", "filePath": str(path)}})


def bash(tool_id, command):
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=cwd)
    text = done.stdout if done.returncode == 0 else f"Exit code {{done.returncode}}\n{{done.stdout}}{{done.stderr}}"
    tool(tool_id, "Bash", {{"command": command}}, text,
         {{"stdout": done.stdout, "stderr": done.stderr, "interrupted": False}}, is_error=done.returncode != 0)


say({{"type": "system", "subtype": "init", "cwd": str(cwd), "model": "scripted", "session_id": "s1"}})
write("t1", "docs/guide.md", "# Guide\n\nHow to use it.\n")
if "live" in prompt:
    while True:
        time.sleep(0.1)
write("t2", "src/app.py", "print('hello')\npassword = 'hunter2-secret'\n")
bash("t3", "rm README.md && echo removed && echo careful >&2")
write("t4", "requirements.txt", "flask\n")
write("t5", "migrations/0001_init.sql", "create table t (id int);\n")
bash("t6", "pytest -q || {{ echo '1 failed'; exit 1; }}")
say({{"type": "assistant", "message": {{"content": [{{"type": "text", "text": "Done."}}]}}}})
say({{"type": "result", "subtype": "success", "is_error": False, "result": "All done.", "num_turns": 6,
      "usage": {{"input_tokens": 120, "output_tokens": 45, "cache_read_input_tokens": 10}},
      "total_cost_usd": 0.01}})
"""

CHATTY = r"""
import sys
for n in range(int(sys.argv[1])):
    print(f"line {n}", flush=True)
"""


@pytest.fixture
def scripted_claude(admin_api, tmp_path):
    agent = tmp_path / "scripted-claude"
    agent.write_text(AGENT.format(python=sys.executable))
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
    response = admin_api.put(
        "/api/settings/providers/claude-code", json={"enabled": True, "command": [str(agent), "-p", "{prompt}"]}
    )
    assert response.status_code == 200, response.get_json()
    # These tests pin the run's files, diff and summary exactly: without the managed docs a completed
    # run adds (tested in test_runs.py).
    assert admin_api.put("/api/settings/server-params", json={"docs.autoUpdate": False}).status_code == 200


@pytest.fixture
def project(app, user_api, tmp_path, run_jobs):
    created = user_api.post("/api/projects", json={"name": "demo", "repositoryUrl": origin_url(tmp_path / "origin")})
    run_jobs()
    return created.get_json()["id"]


def _draft(api, project_id, prompt="do the work", agent="claude-code", model="haiku"):
    body = {"projectId": project_id, "title": "Work", "prompt": prompt, "selectedAgent": agent}
    if model:
        body["selectedModel"] = model
    response = api.post(RUNS, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _list(api, url):
    response = api.get(url, query_string={"limit": 200})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


@pytest.fixture
def finished_run(user_api, project, scripted_claude, run_jobs):
    run_id = _draft(user_api, project)
    assert user_api.post(f"{RUNS}/{run_id}/start").status_code == 202
    run_jobs()
    run = user_api.get(f"{RUNS}/{run_id}").get_json()
    assert run["status"] == "completed", run
    return run_id


CHANGES = {
    "docs/guide.md": "added",
    "src/app.py": "modified",
    "README.md": "deleted",
    "requirements.txt": "added",
    "migrations/0001_init.sql": "added",
}


def test_workspace_files_follow_the_run_and_each_has_its_own_diff(user_api, finished_run):
    files = _list(user_api, f"{RUNS}/{finished_run}/files")
    assert {f["path"]: f["changeType"] for f in files} == CHANGES
    app_py = next(f for f in files if f["path"] == "src/app.py")
    assert (app_py["additions"], app_py["deletions"], app_py["binary"]) == (2, 1, False)
    assert app_py["runId"] == finished_run and app_py["oldPath"] is None and app_py["updatedAt"].endswith("Z")

    detail = user_api.get(f"{RUNS}/{finished_run}/files/{app_py['id']}").get_json()
    assert detail["path"] == "src/app.py"
    assert detail["diff"].startswith("diff --git a/src/app.py b/src/app.py\n")
    assert "+print('hello')" in detail["diff"] and "-print('hi')" in detail["diff"]
    assert "README" not in detail["diff"] and "guide" not in detail["diff"]

    readme = next(f for f in files if f["path"] == "README.md")
    gone = user_api.get(f"{RUNS}/{finished_run}/files/{readme['id']}").get_json()
    assert "-# demo" in gone["diff"] and "deleted file mode" in gone["diff"]


def test_the_aggregate_diff_and_the_snapshots_of_a_finished_run(user_api, finished_run):
    diff = user_api.get(f"{RUNS}/{finished_run}/diff").get_json()
    assert diff["stats"]["filesChanged"] == 5
    assert {f["path"]: f["changeType"] for f in diff["files"]} == CHANGES
    for path in CHANGES:
        assert f" b/{path}\n" in diff["diff"]
    snapshots = _list(user_api, f"{RUNS}/{finished_run}/snapshots")
    assert [s["kind"] for s in snapshots] == ["pre_run", "post_run"]
    assert all(s["runId"] == finished_run for s in snapshots)


def test_commands_are_recorded_with_signed_links_to_their_output(app, user_api, anon, finished_run):
    commands = _list(user_api, f"{RUNS}/{finished_run}/commands")
    assert [(c["toolId"], c["exitCode"]) for c in commands] == [("t3", 0), ("t6", 1)]
    rm = commands[0]
    assert rm["command"].startswith("rm README.md") and rm["durationMs"] >= 0 and rm["finishedAt"]
    assert rm["cwd"]  # the agent's working directory, from its init message

    detail = user_api.get(f"{RUNS}/{finished_run}/commands/{rm['id']}").get_json()
    assert detail["stdoutUrl"].startswith("http://localhost/api/runs/blobs/")
    stdout = anon.get(detail["stdoutUrl"])  # no bearer token
    assert stdout.status_code == 200 and stdout.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert stdout.get_data(as_text=True) == "removed\n"
    assert anon.get(detail["stderrUrl"]).get_data(as_text=True) == "careful\n"
    with app.app_context():
        from runner import telemetry

        assert (telemetry.blob_root() / f"runs/{finished_run}/{rm['id']}.stdout").read_text() == "removed\n"

    token = detail["stdoutUrl"].rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_problem(anon.get(f"{RUNS}/blobs/{tampered}"), 403, "invalid-blob-url")
    assert_problem(anon.get(f"{RUNS}/blobs/not-a-token"), 403, "invalid-blob-url")
    app.config["BLOB_URL_TTL_SECONDS"] = -1  # every link is now past its lifetime
    assert_problem(anon.get(detail["stdoutUrl"]), 403, "invalid-blob-url")


def test_the_summary_names_files_risks_tests_docs_and_usage(user_api, finished_run):
    summary = user_api.get(f"{RUNS}/{finished_run}/summary").get_json()
    assert {f["path"]: f["changeType"] for f in summary["changedFiles"]} == CHANGES
    assert set(summary["changedFiles"][0]) == {"path", "changeType", "additions", "deletions"}
    risks = {r["reason"]: (r["level"], r["paths"]) for r in summary["risks"]}
    assert risks["Database migrations or schema files changed"] == ("high", ["migrations/0001_init.sql"])
    assert risks["Secrets-like strings were added"] == ("high", ["src/app.py"])
    assert risks["1 test command(s) failed"][0] == "high"
    assert risks["Files were deleted"] == ("medium", ["README.md"])
    assert risks["Dependency manifests changed"] == ("medium", ["requirements.txt"])
    assert not any("Large diff" in reason for reason in risks)
    assert [(t["command"].split()[0], t["exitCode"]) for t in summary["tests"]] == [("pytest", 1)]
    assert {d["path"] for d in summary["docs"]} == {"docs/guide.md", "README.md"}
    usage = summary["tokenUsage"]
    assert (usage["inputTokens"], usage["outputTokens"], usage["cacheReadInputTokens"]) == (120, 45, 10)
    assert usage["totalCostUsd"] == pytest.approx(0.01)
    assert summary["durationMs"] >= 0


def test_other_users_see_none_of_it(user_api, make_user, login, finished_run):
    file_id = _list(user_api, f"{RUNS}/{finished_run}/files")[0]["id"]
    command_id = _list(user_api, f"{RUNS}/{finished_run}/commands")[0]["id"]
    _, email = make_user()
    stranger = login(email)
    for suffix in ("files", f"files/{file_id}", "diff", "snapshots", "commands", f"commands/{command_id}", "summary"):
        assert_problem(stranger.get(f"{RUNS}/{finished_run}/{suffix}"), 404)


def test_a_draft_has_empty_telemetry_and_unknown_ids_are_404(user_api, project, scripted_claude, finished_run):
    draft = _draft(user_api, project)
    assert _list(user_api, f"{RUNS}/{draft}/files") == []
    assert _list(user_api, f"{RUNS}/{draft}/commands") == []
    assert _list(user_api, f"{RUNS}/{draft}/snapshots") == []
    assert user_api.get(f"{RUNS}/{draft}/diff").get_json() == {
        "diff": "", "files": [], "stats": {"filesChanged": 0, "additions": 0, "deletions": 0}
    }
    summary = user_api.get(f"{RUNS}/{draft}/summary").get_json()
    assert summary["changedFiles"] == [] and summary["risks"] == [] and summary["durationMs"] is None
    # Another run's file and command ids are not this run's.
    file_id = _list(user_api, f"{RUNS}/{finished_run}/files")[0]["id"]
    command_id = _list(user_api, f"{RUNS}/{finished_run}/commands")[0]["id"]
    assert_problem(user_api.get(f"{RUNS}/{draft}/files/{file_id}"), 404)
    assert_problem(user_api.get(f"{RUNS}/{draft}/commands/{command_id}"), 404)
    assert_problem(user_api.get(f"{RUNS}/{draft}/files/2147483648"), 404)
    assert_problem(user_api.get(f"{RUNS}/{draft}/files/../../etc/passwd"), 404)


def test_lists_are_cursor_paginated(user_api, finished_run):
    first = user_api.get(f"{RUNS}/{finished_run}/files", query_string={"limit": 2}).get_json()
    assert len(first["data"]) == 2 and first["meta"]["nextCursor"]
    seen = [f["id"] for f in first["data"]]
    cursor = first["meta"]["nextCursor"]
    while cursor:
        page = user_api.get(f"{RUNS}/{finished_run}/files", query_string={"limit": 2, "cursor": cursor}).get_json()
        seen += [f["id"] for f in page["data"]]
        cursor = page["meta"]["nextCursor"]
    assert len(seen) == 5 and seen == sorted(seen)
    # A cursor of one list is refused by another.
    assert_problem(
        user_api.get(f"{RUNS}/{finished_run}/commands", query_string={"cursor": first["meta"]["nextCursor"]}), 400
    )


def test_files_and_diff_are_current_while_the_run_goes(config, user_api, project, scripted_claude):
    run_id = _draft(user_api, project, prompt="live: write then wait")
    user_api.post(f"{RUNS}/{run_id}/start")
    env = worker_env(config)
    worker = subprocess.Popen(
        [sys.executable, "-m", "runner", "worker", "--burst", "--queues", "runs"], env=env, stderr=subprocess.PIPE
    )
    try:
        files = wait_for(lambda: _list(user_api, f"{RUNS}/{run_id}/files"))
        assert [(f["path"], f["changeType"]) for f in files] == [("docs/guide.md", "added")]
        assert user_api.get(f"{RUNS}/{run_id}").get_json()["status"] == "running"
        live = user_api.get(f"{RUNS}/{run_id}/diff").get_json()
        assert [f["path"] for f in live["files"]] == ["docs/guide.md"] and "+How to use it." in live["diff"]
        assert [s["kind"] for s in _list(user_api, f"{RUNS}/{run_id}/snapshots")] == ["pre_run"]
        assert user_api.post(f"{RUNS}/{run_id}/cancel").status_code == 200
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr.decode()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert [s["kind"] for s in _list(user_api, f"{RUNS}/{run_id}/snapshots")][:2] == ["pre_run", "post_run"]
    assert [f["path"] for f in user_api.get(f"{RUNS}/{run_id}/diff").get_json()["files"]] == ["docs/guide.md"]


def test_a_chatty_agent_is_stored_in_batches_in_order(app, admin_api, user_api, project, run_jobs):
    lines = 3000
    response = admin_api.put(
        "/api/settings/providers/command",
        json={"enabled": True, "command": [sys.executable, "-c", CHATTY, str(lines)]},
    )
    assert response.status_code == 200
    run_id = _draft(user_api, project, agent="command", model=None)
    user_api.post(f"{RUNS}/{run_id}/start")

    from runner.extensions import db

    commits = []

    def count(session):
        commits.append(1)

    sa.event.listen(db.session, "after_commit", count)
    try:
        run_jobs()
    finally:
        sa.event.remove(db.session, "after_commit", count)
    assert user_api.get(f"{RUNS}/{run_id}").get_json()["status"] == "completed"
    events, cursor = [], None
    while True:
        query = {"limit": 200, "eventTypes": "log", **({"cursor": cursor} if cursor else {})}
        page = user_api.get(f"{RUNS}/{run_id}/events", query_string=query).get_json()
        events += page["data"]
        cursor = page["meta"]["nextCursor"]
        if not cursor:
            break
    ticks = [e for e in events if e["message"].startswith("line ")]
    assert [e["message"] for e in ticks] == [f"line {n}" for n in range(lines)]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Far fewer commits than lines: one per batch, not one per line.
    assert len(commits) < lines / 20, len(commits)
