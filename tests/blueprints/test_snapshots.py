"""Snapshots over HTTP: capture a project's checkout, restore it byte for byte, compare states."""
import pytest

from gitrepo import git, head, origin_url, tree_state, write
from helpers import assert_problem

PROJECTS = "/api/projects"


@pytest.fixture
def project(app, user_api, tmp_path, run_jobs):
    """A ready project and its checkout directory."""
    from runner import projects

    url = origin_url(
        tmp_path / "origin",
        {"README.md": "# demo\n", "src/app.py": "print('hi')\n", "docs/old name.md": "notes\n", ".gitignore": "*.log\n"},
    )
    created = user_api.post(PROJECTS, json={"name": "demo", "repositoryUrl": url}).get_json()
    run_jobs()
    with app.app_context():
        repo = projects.repo_dir(created["id"])
    return created["id"], repo


def _snapshot(api, project_id, description="before"):
    response = api.post(f"{PROJECTS}/{project_id}/snapshots", json={"description": description})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_manual_snapshot_is_a_commit_on_a_hidden_ref(user_api, project):
    project_id, repo = project
    write(repo, {"untracked.txt": "new\n", "debug.log": "ignored\n"})
    before_head, status = head(repo), git(repo, "status", "--porcelain")
    snapshot = _snapshot(user_api, project_id)
    assert snapshot["kind"] == "manual" and snapshot["description"] == "before"
    assert snapshot["runId"] is None and snapshot["projectId"] == project_id
    # Tracked and untracked files; the ignored one left out.
    assert snapshot["fileCount"] == 5
    assert head(repo, f"refs/runner/snapshots/{snapshot['id']}") == snapshot["commitSha"]
    assert "untracked.txt" in git(repo, "ls-tree", "-r", "--name-only", snapshot["commitSha"])
    # Nothing the user sees moved: HEAD, branch, index, status.
    assert head(repo) == before_head
    assert git(repo, "status", "--porcelain") == status
    assert user_api.get(f"/api/snapshots/{snapshot['id']}").get_json() == snapshot


def test_restore_round_trip_gives_a_byte_identical_tree(user_api, project):
    project_id, repo = project
    write(repo, {"debug.log": "ignored, must survive\n"})
    before = tree_state(repo)
    snapshot = _snapshot(user_api, project_id)

    write(repo, {"README.md": "# changed\n", "src/new.py": "x = 1\n", "src/app.py": None, "bin.dat": bytes(range(256))})
    git(repo, "mv", "docs/old name.md", "docs/new name.md")
    changed = tree_state(repo)

    response = user_api.post(f"/api/snapshots/{snapshot['id']}/restore")
    assert response.status_code == 200
    body = response.get_json()
    assert body["restored"]["id"] == snapshot["id"]
    assert body["checkpoint"]["kind"] == "restore_checkpoint"
    assert body["checkpoint"]["description"] == "restore checkpoint"
    assert tree_state(repo) == before

    # The checkpoint brings the changed state back.
    user_api.post(f"/api/snapshots/{body['checkpoint']['id']}/restore")
    assert tree_state(repo) == changed


def test_compare_with_the_current_tree_and_with_another_snapshot(user_api, project):
    project_id, repo = project
    first = _snapshot(user_api, project_id, "first")
    write(repo, {"README.md": "# demo\nmore\n", "src/app.py": None, "logo.png": b"\x89PNG\r\n\x1a\n\x00\x01"})
    git(repo, "mv", "docs/old name.md", "docs/new name.md")

    current = user_api.post(f"/api/snapshots/{first['id']}/compare", json={"against": "current"})
    assert current.status_code == 200
    body = current.get_json()
    files = {f["path"]: f for f in body["files"]}
    assert files["README.md"]["changeType"] == "modified" and files["README.md"]["additions"] == 1
    assert files["src/app.py"]["changeType"] == "deleted"
    assert files["logo.png"]["changeType"] == "added" and files["logo.png"]["binary"] is True
    assert files["docs/new name.md"]["changeType"] == "renamed"
    assert files["docs/new name.md"]["oldPath"] == "docs/old name.md"
    assert "+more" in body["diff"] and "Binary files" in body["diff"]
    assert body["stats"]["filesChanged"] == 4

    second = _snapshot(user_api, project_id, "second")
    between = user_api.post(f"/api/snapshots/{first['id']}/compare", json={"against": second["id"]}).get_json()
    assert {f["path"] for f in between["files"]} == set(files)


@pytest.mark.parametrize("against", ["nope", 0, -1, True, None, 1.5])
def test_compare_needs_current_or_a_snapshot_id(user_api, project, against):
    snapshot = _snapshot(user_api, project[0])
    body = assert_problem(user_api.post(f"/api/snapshots/{snapshot['id']}/compare", json={"against": against}), 422)
    assert "against" in body["errors"]


def test_compare_against_another_projects_snapshot_is_a_422(user_api, project, tmp_path, run_jobs):
    other_url = origin_url(tmp_path / "other")
    other = user_api.post(PROJECTS, json={"name": "other", "repositoryUrl": other_url}).get_json()
    run_jobs()
    theirs = _snapshot(user_api, other["id"])
    mine = _snapshot(user_api, project[0])
    response = user_api.post(f"/api/snapshots/{mine['id']}/compare", json={"against": theirs["id"]})
    assert "against" in assert_problem(response, 422)["errors"]


def test_snapshots_are_listed_newest_first(user_api, project):
    ids = [_snapshot(user_api, project[0], f"s{n}")["id"] for n in range(3)]
    page = user_api.get(f"{PROJECTS}/{project[0]}/snapshots", query_string={"limit": 2}).get_json()
    rest = user_api.get(
        f"{PROJECTS}/{project[0]}/snapshots", query_string={"cursor": page["meta"]["nextCursor"]}
    ).get_json()
    assert [s["id"] for s in page["data"] + rest["data"]] == ids[::-1]


def test_other_users_snapshots_are_404(user_api, project, make_user, login):
    snapshot = _snapshot(user_api, project[0])
    _, email = make_user()
    stranger = login(email)
    assert_problem(stranger.get(f"/api/snapshots/{snapshot['id']}"), 404)
    assert_problem(stranger.post(f"/api/snapshots/{snapshot['id']}/restore"), 404)
    assert_problem(stranger.post(f"/api/snapshots/{snapshot['id']}/compare", json={"against": "current"}), 404)
    assert_problem(stranger.get(f"{PROJECTS}/{project[0]}/snapshots"), 404)
    assert_problem(stranger.post(f"{PROJECTS}/{project[0]}/snapshots", json={}), 404)


def test_a_project_that_is_not_ready_cannot_be_snapshotted(user_api, tmp_path):
    pending = user_api.post(PROJECTS, json={"name": "p", "repositoryUrl": origin_url(tmp_path / "o")}).get_json()
    body = assert_problem(user_api.post(f"{PROJECTS}/{pending['id']}/snapshots", json={}), 409, "project-not-snapshottable")
    assert body["currentStatus"] == "pending"


def test_a_snapshot_from_before_a_re_clone_is_unavailable(user_api, project, run_jobs):
    snapshot = _snapshot(user_api, project[0])
    user_api.delete(f"{PROJECTS}/{project[0]}")
    run_jobs()
    user_api.post(f"{PROJECTS}/{project[0]}/clone")
    run_jobs()
    # The origin never had this commit: the snapshot lived only in the old checkout.
    assert_problem(user_api.post(f"/api/snapshots/{snapshot['id']}/restore"), 409, "snapshot-unavailable")
