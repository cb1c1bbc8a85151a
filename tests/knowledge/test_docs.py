"""Managed docs: auto-blocks refreshed without touching a byte of the humans' text, the changelog
written and read back, a run's refresh in its real worktree (idempotent when retried), and the docs
endpoints with a real worker on both databases."""
import textwrap

import pytest

from gitrepo import commit, git, head, make_repo, origin_url
from helpers import assert_problem
from runner.knowledge import diagrams, docs

import test_schema

HUMAN_BEFORE = "# Project map\r\n\r\nWritten by a person, with CRLF line ends,\r\nand bytes that are not UTF-8: \xff\xfe.\n\n".encode("latin-1")
HUMAN_AFTER = "\n## Notes kept by hand\n\nNo newline at the end, trailing spaces   ".encode()


def _read(path):
    return path.read_bytes()


def test_human_text_outside_the_blocks_survives_regeneration_byte_for_byte(tmp_path):
    block = b"<!-- runner:auto:begin project-map -->\nstale generated text\n<!-- runner:auto:end project-map -->"
    other = b"\n<!-- runner:auto:begin something-else -->\nnot ours to touch\n<!-- runner:auto:end something-else -->\n"
    repo = make_repo(tmp_path / "repo", {
        "app.py": "def main():\n    pass\n",
        "docs/ai/PROJECT_MAP.md": HUMAN_BEFORE + block + other + HUMAN_AFTER,
        # No block at all: the block is appended after the human text.
        "docs/ai/DATABASE_SCHEMA.md": b"Schema notes, no trailing newline",
    })
    changed = docs.write_docs(repo)
    assert changed == ["docs/ai/PROJECT_MAP.md", "docs/ai/DATABASE_SCHEMA.md", "docs/ai/ARCHITECTURE_DIAGRAMS.md",
                       "CHANGELOG_AI.md"]

    text = _read(repo / "docs/ai/PROJECT_MAP.md")
    begin = b"<!-- runner:auto:begin project-map -->"
    assert text.startswith(HUMAN_BEFORE + begin + b"\n")
    end = text.index(b"<!-- runner:auto:end project-map -->")
    assert text[end:] == b"<!-- runner:auto:end project-map -->" + other + HUMAN_AFTER
    generated = text[len(HUMAN_BEFORE + begin) : end].decode()
    assert "stale generated text" not in generated
    assert "| `app.py` | python | 2 | `main` function |  |" in generated

    schema = _read(repo / "docs/ai/DATABASE_SCHEMA.md")
    assert schema.startswith(b"Schema notes, no trailing newline\n\n<!-- runner:auto:begin database-schema -->\n")
    assert schema.endswith(b"<!-- runner:auto:end database-schema -->\n")
    assert b"No tables: No schema source was found" in schema

    # Missing files are created with a heading and their block.
    architecture = _read(repo / "docs/ai/ARCHITECTURE_DIAGRAMS.md").decode()
    assert architecture.startswith("# Architecture diagrams\n\n") and "```mermaid\nflowchart LR\n" in architecture
    changelog = _read(repo / "CHANGELOG_AI.md").decode()
    assert changelog.startswith("# AI changelog\n\n")
    assert changelog.endswith("<!-- runner:auto:begin changelog -->\n<!-- runner:auto:end changelog -->\n")

    # Nothing changed since: nothing is rewritten.
    snapshot = {path: _read(repo / path) for path in docs.MANAGED_PATHS}
    assert docs.write_docs(repo) == []
    assert {path: _read(repo / path) for path in docs.MANAGED_PATHS} == snapshot

    # The code changes: only the blocks that depend on it change, human text still as it was.
    commit(repo, {"models.sql": "CREATE TABLE t (id INT PRIMARY KEY);\n"})
    assert docs.write_docs(repo) == ["docs/ai/PROJECT_MAP.md", "docs/ai/DATABASE_SCHEMA.md", "docs/ai/ARCHITECTURE_DIAGRAMS.md"]
    text = _read(repo / "docs/ai/PROJECT_MAP.md")
    assert text.startswith(HUMAN_BEFORE + begin) and text.endswith(other + HUMAN_AFTER)
    assert b"### `t`" in _read(repo / "docs/ai/DATABASE_SCHEMA.md")


def test_a_begin_marker_without_its_end_keeps_the_text_after_it():
    text = "Intro\n<!-- runner:auto:begin project-map -->\nHuman text that must stay.\n"
    updated = docs.set_block(text, "project-map", "generated\n")
    assert updated == (
        "Intro\n<!-- runner:auto:begin project-map -->\ngenerated\n<!-- runner:auto:end project-map -->"
        "\nHuman text that must stay.\n"
    )
    assert docs.read_block(updated, "project-map") == "generated\n"
    # From then on it is an ordinary block.
    assert docs.set_block(updated, "project-map", "again\n").endswith("again\n<!-- runner:auto:end project-map -->\nHuman text that must stay.\n")


def test_managed_docs_behind_a_symbolic_link_are_left_alone(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    (repo / "docs").mkdir()
    (repo / "docs" / "ai").symlink_to(outside)
    (repo / "CHANGELOG_AI.md").symlink_to(outside / "log.md")
    assert docs.write_docs(repo) == []
    assert list(outside.iterdir()) == []


def test_a_file_where_the_docs_folder_should_be_does_not_stop_the_other_docs(tmp_path):
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n", "docs/ai": "not a folder\n"})
    assert docs.write_docs(repo) == ["CHANGELOG_AI.md"]
    assert (repo / "docs/ai").read_text() == "not a folder\n"


ENTRIES = [
    {
        "run_id": 12,
        "date": "2026-11-02",
        "title": "Add orders | with a pipe and `code`",
        "summary": "Added the orders table.\n\n- a list item\n**Files changed**\n<!-- runner:auto:end changelog --> stays text",
        "files": [
            {"path": "db/orders.sql", "change_type": "added"},
            {"path": "weird `name`.txt", "change_type": "modified"},
            {"path": "old.py", "change_type": "deleted"},
        ],
    },
    {"run_id": 7, "date": "2026-11-01", "title": "First run", "summary": "", "files": []},
]


def test_changelog_entries_round_trip_and_a_retried_run_replaces_its_own():
    block = ""
    for entry in reversed(ENTRIES):  # oldest first: each new entry goes on top
        block = docs.upsert_entry(block, entry)
    text = docs.set_block("# Changelog\n\nHand-written preface.\n\n", "changelog", block)
    assert docs.parse_entries(docs.read_block(text, "changelog")) == ENTRIES
    assert text.count("<!-- runner:auto:end changelog -->") == 1  # the summary could not close the block

    retried = {**ENTRIES[0], "summary": "Second attempt.", "files": [{"path": "db/orders.sql", "change_type": "added"}]}
    block = docs.upsert_entry(docs.read_block(text, "changelog"), retried)
    assert docs.parse_entries(block) == [retried, ENTRIES[1]]
    assert block.count("runner:entry run=12") == 1


# --- a run's refresh, in a real worktree ------------------------------------------------------


@pytest.fixture
def cloned(user_api, run_jobs, tmp_path):
    """A cloned project whose origin has SQL migrations and a hand-edited PROJECT_MAP.md."""
    files = {n: textwrap.dedent(t) for n, t in test_schema.SQL.items()}
    files["app/models.py"] = "def load():\n    return 1\n"
    files["docs/ai/PROJECT_MAP.md"] = "# Map\n\nKept by hand.\n"
    files["obsolete.txt"] = "bye\n"
    origin = tmp_path / "origin"
    url = origin_url(origin, files)
    project = user_api.post("/api/projects", json={"name": "docs", "repositoryUrl": url}).get_json()
    run_jobs()
    return project["id"], origin


def _run_worktree(app, project_id, email):
    """A run of the project with its worktree and pre_run snapshot, as the run job makes them."""
    from jobs.runs import worktree_path
    from runner import projects
    from runner.extensions import db
    from runner.models import Project, Run, User
    from workspaces import worktrees

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        project = db.session.get(Project, project_id)
        run = Run(project_id=project_id, user_id=user.id, title="Add orders", prompt="p", selected_agent="command",
                  status="running")
        db.session.add(run)
        db.session.commit()
        path = worktree_path(run)
        with projects.repository_lock(project_id):
            worktrees.create_worktree(projects.repo_dir(project_id), path, worktrees.run_branch(run.id), project.default_branch)
            projects.create_snapshot(project, "pre_run", "pre_run", run_id=run.id, worktree=path)
        return run.id, path


def test_a_run_refresh_writes_the_docs_and_its_entry_once(app, user_api, cloned):
    project_id, _ = cloned
    run_id, worktree = _run_worktree(app, project_id, user_api.email)
    commit_before = head(worktree)
    (worktree / "db/migrations/V11__orders.sql").write_text("CREATE TABLE orders (id INT PRIMARY KEY, user_id INT REFERENCES users);\n")
    (worktree / "app/models.py").write_text("def load():\n    return 2\n\n\ndef save():\n    pass\n")
    (worktree / "obsolete.txt").unlink()

    with app.app_context():
        changed = docs.refresh_for_run(run_id, worktree, "Added orders.\n\nThey belong to users.")
    assert changed == ["docs/ai/PROJECT_MAP.md", "docs/ai/DATABASE_SCHEMA.md", "docs/ai/ARCHITECTURE_DIAGRAMS.md",
                       "CHANGELOG_AI.md"]
    assert head(worktree) == commit_before  # written, not committed: the run's commit takes them along

    project_map = (worktree / "docs/ai/PROJECT_MAP.md").read_text()
    assert project_map.startswith("# Map\n\nKept by hand.\n\n<!-- runner:auto:begin project-map -->\n")
    assert "| `app/models.py` | python | 6 | `load` function, `save` function |  |" in project_map
    assert "### `orders`" in (worktree / "docs/ai/DATABASE_SCHEMA.md").read_text()
    users, orders = diagrams._id("t", "users"), diagrams._id("t", "orders")
    assert f'{users} |o--o{{ {orders} : "user_id"' in (worktree / "docs/ai/ARCHITECTURE_DIAGRAMS.md").read_text()
    from datetime import datetime, timezone

    entries = docs.changelog(worktree)
    assert entries == [{
        "run_id": run_id,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "title": "Add orders",
        "summary": "Added orders.\n\nThey belong to users.",
        "files": [
            {"path": "app/models.py", "change_type": "modified"},
            {"path": "db/migrations/V11__orders.sql", "change_type": "added"},
            {"path": "obsolete.txt", "change_type": "deleted"},
        ],
    }]

    # A retried refresh changes nothing and adds no second entry.
    with app.app_context():
        assert docs.refresh_for_run(run_id, worktree, "Added orders.\n\nThey belong to users.") == []
    assert len(docs.changelog(worktree)) == 1
    # A refresh with a new summary replaces the run's entry.
    with app.app_context():
        assert docs.refresh_for_run(run_id, worktree, "Added orders (retried).") == ["CHANGELOG_AI.md"]
    assert [e["summary"] for e in docs.changelog(worktree)] == ["Added orders (retried)."]


# --- the docs endpoints ------------------------------------------------------------------------


def test_docs_endpoints_list_read_and_regenerate_through_a_worker(app, user_api, cloned, run_jobs):
    from runner import projects

    project_id, origin = cloned
    base = f"/api/projects/{project_id}/docs"
    listed = user_api.get(base).get_json()
    assert listed["meta"] == {"nextCursor": None}
    by_slug = {doc["slug"]: doc for doc in listed["data"]}
    assert list(by_slug) == ["project-map", "database-schema", "architecture-diagrams", "changelog"]
    assert by_slug["project-map"]["exists"] is True and by_slug["project-map"]["path"] == "docs/ai/PROJECT_MAP.md"
    committed_at = git(origin, "log", "-1", "--format=%cI").strip()
    from datetime import datetime

    assert datetime.fromisoformat(by_slug["project-map"]["updatedAt"].replace("Z", "+00:00")) == datetime.fromisoformat(committed_at)
    assert by_slug["database-schema"] == {"slug": "database-schema", "title": "Database schema",
                                          "path": "docs/ai/DATABASE_SCHEMA.md", "exists": False, "updatedAt": None}

    item = user_api.get(f"{base}/project-map").get_json()
    assert item["markdown"] == "# Map\n\nKept by hand.\n" and item["title"] == "Project map"
    body = assert_problem(user_api.get(f"{base}/database-schema"), 404, "doc-not-found")
    assert "docs/regenerate" in body["detail"]
    body = assert_problem(user_api.get(f"{base}/nope"), 404, "doc-not-found")
    assert "project-map, database-schema, architecture-diagrams, changelog" in body["detail"]
    assert_problem(user_api.get(f"{base}/regenerate"), 405)  # the action, not a doc
    assert user_api.get(f"/api/projects/{project_id}/changelog").get_json() == {"data": [], "meta": {"nextCursor": None}}

    response = user_api.post(f"{base}/regenerate")
    assert response.status_code == 202, response.get_json()
    queued = response.get_json()
    assert queued["jobId"].startswith(f"project-{project_id}-docs-") and queued["projectId"] == project_id
    assert [d["slug"] for d in queued["docs"]] == list(by_slug)
    run_jobs()

    listed = {doc["slug"]: doc for doc in user_api.get(base).get_json()["data"]}
    assert all(doc["exists"] and doc["updatedAt"] for doc in listed.values())
    markdown = user_api.get(f"{base}/project-map").get_json()["markdown"]
    assert markdown.startswith("# Map\n\nKept by hand.\n\n<!-- runner:auto:begin project-map -->\n")
    assert "| `app/models.py` | python | 2 | `load` function |  |" in markdown
    schema = user_api.get(f"{base}/database-schema").get_json()["markdown"]
    assert "### `users`" in schema and "### `audit_log`" in schema
    with app.app_context():
        repo = projects.repo_dir(project_id)
    # In the default branch's checkout, uncommitted: its HEAD is still origin's.
    assert head(repo) == head(origin)
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == sorted([" M docs/ai/PROJECT_MAP.md", "?? CHANGELOG_AI.md", "?? docs/ai/ARCHITECTURE_DIAGRAMS.md",
                                     "?? docs/ai/DATABASE_SCHEMA.md"])


def test_regenerating_needs_projects_write_and_a_ready_project(user_api, make_user, login, cloned, tmp_path):
    project_id, _ = cloned
    reader = login(user_api.email, abilities=["projects:read"])
    body = assert_problem(reader.post(f"/api/projects/{project_id}/docs/regenerate"), 403)
    assert body["requiredAbility"] == "projects:write"
    _, email = make_user()
    assert_problem(login(email).post(f"/api/projects/{project_id}/docs/regenerate"), 404)
    url = origin_url(tmp_path / "pending-origin")
    pending = user_api.post("/api/projects", json={"name": "p", "repositoryUrl": url}).get_json()["id"]
    assert_problem(user_api.post(f"/api/projects/{pending}/docs/regenerate"), 409, "project-not-ready")
    assert_problem(user_api.get(f"/api/projects/{pending}/docs"), 409, "project-not-ready")


def test_the_changelog_endpoint_reads_the_merged_entries(app, user_api, cloned, run_jobs):
    project_id, origin = cloned
    block = ""
    for entry in reversed(ENTRIES):
        block = docs.upsert_entry(block, entry)
    commit(origin, {"CHANGELOG_AI.md": docs.set_block("# AI changelog\n\nPreface.\n\n", "changelog", block)})
    assert user_api.post(f"/api/projects/{project_id}/pull").status_code == 202
    run_jobs()
    first = user_api.get(f"/api/projects/{project_id}/changelog?limit=1").get_json()
    assert first["data"] == [{
        "runId": 12, "date": "2026-11-02", "title": ENTRIES[0]["title"], "summary": ENTRIES[0]["summary"],
        "files": [{"path": f["path"], "changeType": f["change_type"]} for f in ENTRIES[0]["files"]],
    }]
    second = user_api.get(f"/api/projects/{project_id}/changelog?limit=1&cursor={first['meta']['nextCursor']}").get_json()
    assert second == {"data": [{"runId": 7, "date": "2026-11-01", "title": "First run", "summary": "", "files": []}],
                      "meta": {"nextCursor": None}}


def test_generated_docs_in_the_checkout_can_be_discarded_before_a_pull(app, user_api, cloned, run_jobs):
    """Regenerated docs sit uncommitted in the default branch's checkout; when origin brings its
    own versions of them (a run's branch merged), discard_generated lets the fast-forward through."""
    from runner import projects

    project_id, origin = cloned
    user_api.post(f"/api/projects/{project_id}/docs/regenerate")
    run_jobs()
    merged = commit(origin, {"docs/ai/PROJECT_MAP.md": "# Map\n\nMerged from a run.\n", "CHANGELOG_AI.md": "# Log\n"})
    with app.app_context():
        repo = projects.repo_dir(project_id)
        with projects.repository_lock(project_id):
            assert sorted(docs.discard_generated(repo)) == sorted(docs.MANAGED_PATHS)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert user_api.post(f"/api/projects/{project_id}/pull").status_code == 202
    run_jobs()
    project = user_api.get(f"/api/projects/{project_id}").get_json()
    assert project["status"] == "ready" and project["headSha"] == merged
    assert user_api.get(f"/api/projects/{project_id}/docs/project-map").get_json()["markdown"] == "# Map\n\nMerged from a run.\n"
