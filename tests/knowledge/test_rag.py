"""Retrieval for runs: `rag_context` on a project a real worker cloned and indexed, within token
budgets, and the run's `log` event that records which chunks were given."""
import pytest

from gitrepo import origin_url
from helpers import bare_run
from runner.knowledge import rag

PROJECTS = "/api/projects"
ACCOUNTS = "".join(
    f"def helper_{i}(account):\n    return account.field_{i}\n\n\n" for i in range(30)
) + "def close_account(account, reason):\n    account.closed = True\n    account.reason = reason\n    return account\n"
LONG_FUNCTION = "def rebuild_ledger(ledger):\n" + "".join(f"    ledger.entry_{i} = ledger.balance + {i}\n" for i in range(90))


@pytest.fixture
def project_id(app, user_api, tmp_path, run_jobs):
    url = origin_url(
        tmp_path / "origin",
        {
            "src/accounts.py": ACCOUNTS,
            "src/ledger.py": LONG_FUNCTION,
            "docs/closing.md": "# Closing accounts\n\nRun:\n\n```sh\nrunner close-account 42\n```\n",
            "src/other.py": "def unrelated():\n    return 0\n",
        },
    )
    response = user_api.post(PROJECTS, json={"name": "rag", "repositoryUrl": url})
    run_jobs()
    project = user_api.get(f"{PROJECTS}/{response.get_json()['id']}").get_json()
    assert project["status"] == "ready"
    return project["id"]


def _context(app, project_id, prompt, **kwargs):
    with app.app_context():
        return rag.rag_context(project_id, prompt, **kwargs)


def test_the_prefix_holds_the_best_chunks_with_their_paths_and_lines(app, project_id):
    prefix, chunks = _context(app, project_id, "Make close_account refuse an empty reason", token_budget=2000)
    assert chunks[0]["path"] == "src/accounts.py" and chunks[0]["symbol"] == "close_account"
    assert (chunks[0]["startLine"], chunks[0]["endLine"]) == (121, 124)
    assert prefix.startswith(rag.HEADER) and prefix.endswith(rag.FOOTER)
    assert "src/accounts.py:121-124 (close_account)\n```\ndef close_account(account, reason):\n" in prefix
    assert "def unrelated" not in prefix
    assert rag.tokens(prefix) <= 2000
    assert sum(c["tokens"] for c in chunks) <= 2000
    assert set(chunks[0]) == {"path", "startLine", "endLine", "symbol", "score", "tokens"}


@pytest.mark.parametrize("budget", [120, 250, 600, 2000])
def test_the_prefix_never_exceeds_the_token_budget(app, project_id, budget):
    prefix, chunks = _context(app, project_id, "rebuild_ledger entry balance close account", token_budget=budget)
    assert prefix and rag.tokens(prefix) <= budget
    assert len({(c["path"], c["startLine"]) for c in chunks}) == len(chunks)


def test_a_chunk_too_long_for_the_budget_is_cut_to_its_first_lines(app, project_id):
    _, whole = _context(app, project_id, "rebuild_ledger", token_budget=5000)
    assert whole[0]["symbol"] == "rebuild_ledger" and whole[0]["endLine"] - whole[0]["startLine"] + 1 >= 60
    prefix, cut = _context(app, project_id, "rebuild_ledger", token_budget=300)
    assert cut[0]["symbol"] == "rebuild_ledger" and cut[0]["startLine"] == whole[0]["startLine"]
    assert cut[0]["endLine"] < whole[0]["endLine"]
    kept = cut[0]["endLine"] - cut[0]["startLine"] + 1
    assert f"src/ledger.py:1-{cut[0]['endLine']} (rebuild_ledger)" in prefix
    assert prefix.count("ledger.entry_") == kept - 1  # the def line, then one entry per line kept


def test_markdown_with_fences_of_its_own_stays_inside_a_longer_fence(app, project_id):
    prefix, chunks = _context(app, project_id, "closing accounts close-account", token_budget=2000)
    assert chunks[0]["path"] == "docs/closing.md"
    assert "docs/closing.md:1-7 (Closing accounts)\n````\n# Closing accounts" in prefix
    assert "```\n````\n" in prefix


def test_the_budget_defaults_to_the_rag_token_budget_setting(app, admin_api, project_id):
    assert admin_api.put("/api/settings/server-params", json={"rag.tokenBudget": 150}).status_code == 200
    prefix, chunks = _context(app, project_id, "close_account reason")
    assert chunks and rag.tokens(prefix) <= 150
    assert admin_api.put("/api/settings/server-params", json={"rag.tokenBudget": 0}).status_code == 200
    assert _context(app, project_id, "close_account reason") == ("", [])


def test_nothing_is_added_without_an_index_a_match_or_a_budget(app, user_api, tmp_path, project_id):
    never_cloned = user_api.post(PROJECTS, json={"name": "x", "repositoryUrl": origin_url(tmp_path / "o2")}).get_json()
    assert _context(app, never_cloned["id"], "close_account", token_budget=2000) == ("", [])
    assert _context(app, project_id, "zyxwvut qqq", token_budget=2000) == ("", [])
    assert _context(app, project_id, "   ", token_budget=2000) == ("", [])
    assert _context(app, project_id, "close_account", token_budget=10) == ("", [])


def test_the_run_log_event_records_the_chunks_given(app, user_api, project_id):
    from runner.extensions import db

    _, chunks = _context(app, project_id, "close_account reason", token_budget=2000)
    run_id = bare_run(app, user_api.email)
    with app.app_context():
        rag.record(run_id, chunks)
        rag.record(run_id, [])
        db.session.commit()
    events = user_api.get(f"/api/runs/{run_id}/events?eventTypes=log").get_json()["data"]
    given, nothing = sorted(events, key=lambda e: e["id"])
    assert given["message"].startswith(f"Prompt prefixed with {len(chunks)} chunk")
    assert "src/accounts.py:121-124" in given["message"]
    assert given["data"]["rag"]["chunks"] == chunks
    assert given["data"]["rag"]["tokens"] == sum(c["tokens"] for c in chunks)
    assert nothing["message"].startswith("No code from the project index") and nothing["data"]["rag"]["chunks"] == []


# Writes the prompt it was given into its worktree: what a ragEnabled run hands the agent.
PROMPT_KEEPER = "import pathlib, sys\npathlib.Path('prompt.txt').write_text(sys.argv[1])\n"


@pytest.mark.parametrize("rag_enabled", [True, False])
def test_a_rag_enabled_run_gives_the_agent_the_best_chunks_before_its_prompt(app, admin_api, user_api, project_id, run_jobs, rag_enabled):
    import sys

    from jobs.runs import worktree_path
    from runner.extensions import db
    from runner.models import Run

    assert admin_api.put("/api/settings/providers/command", json={
        "enabled": True, "command": [sys.executable, "-c", PROMPT_KEEPER, "{prompt}"]}).status_code == 200
    task = "Make close_account refuse an empty reason"
    draft = user_api.post("/api/runs", json={"projectId": project_id, "title": "Refuse empty reasons", "prompt": task,
                                             "selectedAgent": "command", "ragEnabled": rag_enabled})
    assert draft.status_code == 201, draft.get_json()
    run_id = draft.get_json()["id"]
    assert user_api.post(f"/api/runs/{run_id}/start").status_code == 202
    run_jobs()
    assert user_api.get(f"/api/runs/{run_id}").get_json()["status"] == "completed"
    with app.app_context():
        given = (worktree_path(db.session.get(Run, run_id)) / "prompt.txt").read_text()
    logs = user_api.get(f"/api/runs/{run_id}/events", query_string={"eventTypes": "log"}).get_json()["data"]
    rag_events = [e for e in logs if "rag" in e["data"]]
    if not rag_enabled:
        assert given == task and rag_events == []
        return
    assert given.startswith(rag.HEADER) and given.endswith(task)
    assert "def close_account(account, reason):" in given and "src/accounts.py" in given
    (event,) = rag_events
    assert event["data"]["rag"]["chunks"][0]["path"] == "src/accounts.py"
    assert event["data"]["rag"]["tokens"] <= 2000
