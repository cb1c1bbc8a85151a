"""Per-run worktrees: several at once beside an untouched main checkout, removal, crash recovery."""
import shutil

import pytest

from gitrepo import commit_all, git, head, make_repo, write
from workspaces import snapshots
from workspaces.git import GitError
from workspaces.worktrees import create_worktree, list_worktrees, prune_worktrees, remove_worktree, run_branch


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "project" / "repo", {"README.md": "hi\n", "src/app.py": "app = 1\n"})


def test_run_branch_names():
    assert run_branch(42, 1) == "runner/run-42"
    assert run_branch(42) == "runner/run-42"
    assert run_branch(42, 3) == "runner/run-42-3"


def test_two_runs_work_at_once_without_touching_the_main_checkout(repo, tmp_path):
    root = tmp_path / "project" / "worktrees"
    main_head, main_index = head(repo), (repo / ".git" / "index").read_bytes()
    one = create_worktree(repo, root / "run-1", run_branch(1), "main")
    two = create_worktree(repo, root / "run-2", run_branch(2), main_head)
    assert one == root / "run-1"

    write(one, {"src/app.py": "app = 'one'\n", "one.txt": "1"})
    write(two, {"src/app.py": "app = 'two'\n"})
    commit_all(two, "run 2 works")
    first = snapshots.create_snapshot(one, "refs/runner/snapshots/1", "run 1")
    second = snapshots.create_snapshot(two, "refs/runner/snapshots/2", "run 2")
    assert first["file_count"] == 3 and second["file_count"] == 2

    assert (repo / "src" / "app.py").read_text() == "app = 1\n"
    assert git(repo, "status", "--porcelain") == ""
    assert head(repo) == main_head and head(repo, "main") == main_head
    assert (repo / ".git" / "index").read_bytes() == main_index
    assert git(one, "status", "--porcelain") == " M src/app.py\n?? one.txt\n"
    assert git(two, "symbolic-ref", "--short", "HEAD").strip() == "runner/run-2"

    listed = list_worktrees(repo)
    assert [(w["path"], w["branch"], w["main"]) for w in listed] == [
        (repo, "main", True),
        (one, "runner/run-1", False),
        (two, "runner/run-2", False),
    ]
    assert listed[1]["head"] == main_head and listed[2]["head"] == head(two) != main_head
    assert not any(w["locked"] or w["prunable"] for w in listed)


def test_existing_branch_or_path_is_refused(repo, tmp_path):
    create_worktree(repo, tmp_path / "wt-1", run_branch(1), "main")
    with pytest.raises(GitError, match="branch named 'runner/run-1' already exists"):
        create_worktree(repo, tmp_path / "wt-other", run_branch(1), "main")
    assert not (tmp_path / "wt-other").exists()
    write(tmp_path, {"occupied/file": "x"})
    with pytest.raises(GitError, match="already exists"):
        create_worktree(repo, tmp_path / "occupied", run_branch(2), "main")
    with pytest.raises(GitError, match="not a valid"):
        create_worktree(repo, tmp_path / "wt-3", run_branch(3), "no-such-branch")
    with pytest.raises(GitError, match="Not a valid branch"):
        create_worktree(repo, tmp_path / "wt-4", "--force", "main")


def test_remove_a_dirty_worktree_with_or_without_its_branch(repo, tmp_path):
    one = create_worktree(repo, tmp_path / "wt-1", run_branch(1), "main")
    two = create_worktree(repo, tmp_path / "wt-2", run_branch(2), "main")
    write(one, {"scratch.txt": "uncommitted", "src/app.py": "dirty\n"})
    remove_worktree(repo, one)
    remove_worktree(repo, two, delete_branch=True)
    assert not one.exists() and not two.exists()
    assert [w["path"] for w in list_worktrees(repo)] == [repo]
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert branches == ["main", "runner/run-1"]


def test_prune_after_a_crash(repo, tmp_path):
    root = tmp_path / "worktrees"
    deleted = create_worktree(repo, root / "run-1", run_branch(1), "main")
    healthy = create_worktree(repo, root / "run-2", run_branch(2), "main")
    no_gitfile = create_worktree(repo, root / "run-3", run_branch(3), "main")
    half_checked_out = create_worktree(repo, root / "run-4", run_branch(4), "main")
    deleted_locked = create_worktree(repo, root / "run-5", run_branch(5), "main")

    shutil.rmtree(deleted)  # rm -rf under git
    (no_gitfile / ".git").unlink()  # killed before git wrote the .git file
    # killed during the checkout: git's "initializing" lock still there, files missing
    (repo / ".git" / "worktrees" / "run-4" / "locked").write_text("initializing")
    (half_checked_out / "src" / "app.py").unlink()
    (repo / ".git" / "worktrees" / "run-5" / "locked").write_text("initializing")
    shutil.rmtree(deleted_locked)

    dropped = prune_worktrees(repo)
    assert sorted(dropped) == sorted([deleted, no_gitfile, half_checked_out, deleted_locked])
    assert not no_gitfile.exists() and not half_checked_out.exists()
    assert [w["path"] for w in list_worktrees(repo)] == [repo, healthy]
    assert sorted((repo / ".git" / "worktrees").iterdir()) == [repo / ".git" / "worktrees" / "run-2"]
    assert git(repo, "status", "--porcelain") == ""

    # The next attempt of a run starts afresh where the crashed one was.
    again = create_worktree(repo, deleted, run_branch(1, 2), "main")
    assert (again / "README.md").read_text() == "hi\n"
    assert prune_worktrees(repo) == []


def test_remove_a_worktree_whose_directory_is_gone(repo, tmp_path):
    gone = create_worktree(repo, tmp_path / "wt", run_branch(7), "main")
    shutil.rmtree(gone)
    remove_worktree(repo, gone, delete_branch=True)
    assert [w["path"] for w in list_worktrees(repo)] == [repo]
    assert "runner/run-7" not in git(repo, "branch")


def test_repository_hooks_never_run(repo, tmp_path):
    marker = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    create_worktree(repo, tmp_path / "wt", run_branch(1), "main")
    assert not marker.exists()
    git(repo, "checkout", "-q", "-b", "probe")  # the hook itself works
    assert marker.exists()


def test_worktree_of_an_unborn_repository_is_refused_clearly(tmp_path):
    empty = make_repo(tmp_path / "empty")
    with pytest.raises(GitError):
        create_worktree(empty, tmp_path / "wt", run_branch(1), "main")
