"""Snapshots: exact round trips, nothing of the checkout moved, compare output."""
import os
import shutil
import subprocess

import pytest

from gitrepo import commit_all, directories, git, head, make_repo, tree_state, write
from workspaces import snapshots
from workspaces.git import GitError, NotARepository
from workspaces.worktrees import create_worktree

BINARY = bytes(range(256)) * 4
ODD_NAMES = {
    "with space.txt": "space\n",
    "ünïcødé/файл.txt": "unicode\n",
    "-leading-dash.txt": "dash\n",
    "quote\"s and 'apostrophes'.txt": "quotes\n",
    "semi;colon&amp$dollar.txt": "shell\n",
    "tab\tin name.txt": "tab\n",
}


@pytest.fixture
def repo(tmp_path):
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\nbuild/\n",
            "README.md": "# project\n",
            "src/app.py": "".join(f"line {i}\n" for i in range(40)),
            "src/util/helpers.py": "def help():\n    return 1\n",
            "scripts/run.sh": "#!/bin/sh\necho run\n",
            "assets/logo.bin": BINARY,
            "docs/old-name.md": "".join(f"doc line {i}\n" for i in range(30)),
            "doomed/only-file.txt": "soon gone\n",
            **ODD_NAMES,
        },
    )
    (repo / "scripts" / "run.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "exec bit")
    return repo


def _checkout_state(repo):
    return {
        "head": head(repo),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "index": (repo / ".git" / "index").read_bytes(),
        "status": git(repo, "status", "--porcelain", "-uall"),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags"),
    }


def _mutate(repo):
    """Every kind of change an agent makes."""
    write(repo, {"src/app.py": "changed\n" + (repo / "src" / "app.py").read_text()})  # modify
    write(repo, {"new/deep/module.py": "x = 1\n", "notes.txt": "untracked\n"})  # add
    (repo / "README.md").unlink()  # delete tracked
    shutil.rmtree(repo / "doomed")  # delete a whole directory
    (repo / "src" / "util" / "helpers.py").chmod(0o755)  # mode only
    write(repo, {"assets/photo.bin": BINARY[::-1], "assets/logo.bin": BINARY[:500] + b"\x00changed"})
    os.rename(repo / "docs" / "old-name.md", repo / "docs" / "new-name.md")  # rename
    (repo / "with space.txt").unlink()
    write(repo, {"with space.txt/now a dir.txt": "file became a directory\n"})
    os.symlink("src/app.py", repo / "link-to-app")


def test_round_trip_restores_a_byte_identical_tree(repo, tmp_path):
    write(repo, {"untracked-at-first.txt": "u\n", "build/out.o": "ignored\n", "debug.log": "ignored\n"})
    original, original_dirs = tree_state(repo), directories(repo)
    first = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "before")

    _mutate(repo)
    mutated, mutated_dirs = tree_state(repo), directories(repo)
    second = snapshots.create_snapshot(repo, "refs/runner/snapshots/2", "after")
    assert first["commit_sha"] != second["commit_sha"]

    snapshots.restore_snapshot(repo, first["commit_sha"])
    assert tree_state(repo) == original
    assert directories(repo) == original_dirs  # new/deep/ and friends gone, doomed/ back

    snapshots.restore_snapshot(repo, second["commit_sha"])
    assert tree_state(repo) == mutated
    assert directories(repo) == mutated_dirs
    assert (repo / "src" / "util" / "helpers.py").stat().st_mode & 0o111
    assert os.readlink(repo / "link-to-app") == "src/app.py"

    # Restoring the state that is already there changes nothing.
    snapshots.restore_snapshot(repo, second["commit_sha"])
    assert tree_state(repo) == mutated


def test_snapshot_captures_tracked_and_untracked_but_not_ignored_files(repo):
    write(repo, {"untracked.txt": "u\n", "debug.log": "ignored\n", "build/x.o": "ignored\n"})
    (repo / "README.md").write_text("modified\n")
    result = snapshots.create_snapshot(repo, "refs/runner/snapshots/9", "manual snapshot\n\nwith a body")
    files = git(repo, "ls-tree", "-r", "-z", "--name-only", result["commit_sha"]).split("\0")[:-1]
    assert "untracked.txt" in files and "debug.log" not in files and "build/x.o" not in files
    assert set(ODD_NAMES) <= set(files)
    assert result["file_count"] == len(files) == len(ODD_NAMES) + 9
    assert git(repo, "show", f"{result['commit_sha']}:README.md") == "modified\n"
    assert git(repo, "rev-parse", "refs/runner/snapshots/9").strip() == result["commit_sha"]
    assert git(repo, "rev-parse", f"{result['commit_sha']}^{{tree}}").strip() == result["tree_sha"]
    assert git(repo, "rev-parse", f"{result['commit_sha']}^").strip() == head(repo)
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%B", result["commit_sha"]) == (
        "Runner <runner@localhost>\nmanual snapshot\n\nwith a body\n"
    )


def test_snapshot_and_restore_leave_head_branch_index_and_status_alone(repo):
    write(repo, {"staged.txt": "staged\n", "untracked.txt": "u\n"})
    git(repo, "add", "staged.txt")
    (repo / "src" / "app.py").write_text("unstaged change\n")
    before = _checkout_state(repo)
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "s", author=("Ann", "ann@example.com"))
    assert _checkout_state(repo) == before
    assert git(repo, "log", "-1", "--format=%an %ae %cn", snapshot["commit_sha"]).strip() == "Ann ann@example.com Ann"
    assert not [p for p in (repo / ".git").iterdir() if p.name.startswith("runner-index")]

    write(repo, {"later.txt": "later\n"})
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    after = _checkout_state(repo)
    assert after == before  # the same files on disk, the same index, HEAD and branch
    assert not [p for p in (repo / ".git").iterdir() if p.name.startswith("runner-index")]


def test_restore_leaves_ignored_files_alone(repo):
    write(repo, {"build/cache/a.o": "old object\n", "server.log": "old log\n"})
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "s")
    write(repo, {"build/cache/a.o": "new object\n", "build/b.o": "b\n", "fresh.log": "fresh\n", "junk.txt": "x"})
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    assert (repo / "build" / "cache" / "a.o").read_text() == "new object\n"
    assert (repo / "build" / "b.o").exists() and (repo / "fresh.log").exists()
    assert (repo / "server.log").read_text() == "old log\n"
    assert not (repo / "junk.txt").exists()


def test_restore_follows_the_snapshots_own_ignore_rules(repo):
    """A file ignored only by a .gitignore the agent added afterwards is not in the snapshot, and
    the restored .gitignore does not ignore it: it goes."""
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "s")
    write(repo, {".gitignore": "*.log\nbuild/\n*.tmp\n", "scratch.tmp": "agent junk\n"})
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    assert not (repo / "scratch.tmp").exists()
    assert (repo / ".gitignore").read_text() == "*.log\nbuild/\n"


def test_restore_swaps_files_and_directories(repo):
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "s")
    shutil.rmtree(repo / "src")
    write(repo, {"src": "now a file\n"})
    (repo / "README.md").unlink()
    write(repo, {"README.md/inside.txt": "now a directory\n"})
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    assert (repo / "src" / "util" / "helpers.py").is_file()
    assert (repo / "README.md").read_text() == "# project\n"
    assert git(repo, "status", "--porcelain") == ""


def test_snapshot_on_an_unborn_branch(tmp_path):
    repo = make_repo(tmp_path / "fresh")
    assert snapshots.create_snapshot(repo, "refs/runner/snapshots/0", "empty")["file_count"] == 0
    write(repo, {"a.txt": "a\n", "dir/b.bin": BINARY, ".gitignore": "*.tmp\n", "x.tmp": "ignored"})
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "first")
    assert snapshot["file_count"] == 3
    assert git(repo, "rev-list", "--parents", "-n1", snapshot["commit_sha"]).split() == [snapshot["commit_sha"]]
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    unborn = subprocess.run(["git", "-C", repo, "rev-parse", "-q", "--verify", "HEAD"], capture_output=True)
    assert unborn.returncode == 1
    assert not (repo / ".git" / "index").exists()

    state = tree_state(repo)
    write(repo, {"a.txt": "changed\n", "c.txt": "new\n"})
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    assert tree_state(repo) == state
    assert not (repo / ".git" / "index").exists()


def test_snapshots_in_a_linked_worktree_use_its_own_index(repo, tmp_path):
    worktree = create_worktree(repo, tmp_path / "wt", "runner/run-1", "main")
    main_before = _checkout_state(repo)
    worktree_index = repo / ".git" / "worktrees" / "wt" / "index"
    index_bytes = worktree_index.read_bytes()
    write(worktree, {"agent.txt": "agent\n"})
    (worktree / "README.md").unlink()
    snapshot = snapshots.create_snapshot(worktree, "refs/runner/snapshots/5", "run 1")
    assert worktree_index.read_bytes() == index_bytes
    state = tree_state(worktree)
    write(worktree, {"more.txt": "more\n"})
    snapshots.restore_snapshot(worktree, snapshot["commit_sha"])
    assert tree_state(worktree) == state
    assert _checkout_state(repo) == main_before
    assert [c["path"] for c in snapshots.compare(repo, head(repo), snapshot["commit_sha"])["files"]] == [
        "README.md",
        "agent.txt",
    ]


def test_compare_reports_every_kind_of_change(repo):
    base = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "base")
    _mutate(repo)
    current = snapshots.compare(repo, base["commit_sha"])
    by_path = {f["path"]: f for f in current["files"]}

    assert by_path["docs/new-name.md"] == {
        "path": "docs/new-name.md",
        "old_path": "docs/old-name.md",
        "change_type": "renamed",
        "additions": 0,
        "deletions": 0,
        "binary": False,
    }
    assert by_path["src/app.py"] | {} == {
        "path": "src/app.py", "old_path": None, "change_type": "modified",
        "additions": 1, "deletions": 0, "binary": False,
    }  # fmt: skip
    assert by_path["README.md"]["change_type"] == "deleted" and by_path["README.md"]["deletions"] == 1
    assert by_path["doomed/only-file.txt"]["change_type"] == "deleted"
    assert by_path["new/deep/module.py"]["change_type"] == "added"
    assert by_path["notes.txt"]["additions"] == 1
    assert by_path["src/util/helpers.py"] | {} == {
        "path": "src/util/helpers.py", "old_path": None, "change_type": "modified",
        "additions": 0, "deletions": 0, "binary": False,
    }  # fmt: skip
    for binary in ("assets/photo.bin", "assets/logo.bin"):
        assert by_path[binary]["binary"] is True
        assert by_path[binary]["additions"] is None and by_path[binary]["deletions"] is None
    assert by_path["assets/photo.bin"]["change_type"] == "added"
    assert by_path["with space.txt"]["change_type"] == "deleted"
    assert by_path["with space.txt/now a dir.txt"]["change_type"] == "added"
    assert by_path["link-to-app"]["change_type"] == "added"
    assert len(by_path) == len(current["files"]) == 12

    diff = current["diff"]
    assert (
        "diff --git a/docs/old-name.md b/docs/new-name.md\nsimilarity index 100%\nrename from docs/old-name.md"
    ) in diff
    assert "Binary files a/assets/logo.bin and b/assets/logo.bin differ" in diff
    assert "Binary files /dev/null and b/assets/photo.bin differ" in diff
    assert "old mode 100644\nnew mode 100755" in diff
    assert "+changed\n" in diff
    assert diff.count("diff --git ") == 12

    text = [f for f in current["files"] if not f["binary"]]
    assert current["stats"] == {
        "files_changed": 12,
        "additions": sum(f["additions"] for f in text),
        "deletions": sum(f["deletions"] for f in text),
    }
    assert current["stats"]["additions"] == 5 and current["stats"]["deletions"] == 3

    # The working tree compared as it stands equals the snapshot of it; nothing was committed for "current".
    refs = git(repo, "for-each-ref")
    after = snapshots.create_snapshot(repo, "refs/runner/snapshots/2", "after")
    assert snapshots.compare(repo, base["commit_sha"], after["commit_sha"]) == current
    assert snapshots.compare(repo, after["commit_sha"]) == {
        "files": [],
        "diff": "",
        "stats": {"files_changed": 0, "additions": 0, "deletions": 0},
    }
    assert git(repo, "for-each-ref") == refs + f"{after['commit_sha']} commit\trefs/runner/snapshots/2\n"

    backwards = snapshots.compare(repo, after["commit_sha"], base["commit_sha"])
    assert {f["path"]: f["change_type"] for f in backwards["files"]}["docs/old-name.md"] == "renamed"
    assert backwards["stats"]["additions"] == 3 and backwards["stats"]["deletions"] == 5


def test_compare_shows_odd_names_as_they_are(repo):
    base = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "base")
    for name in ODD_NAMES:
        if name != "tab\tin name.txt":
            (repo / name).write_text("edited\n")
    paths = [f["path"] for f in snapshots.compare(repo, base["commit_sha"])["files"]]
    assert sorted(paths) == sorted(n for n in ODD_NAMES if "\t" not in n)
    diff = snapshots.compare(repo, base["commit_sha"])["diff"]
    assert "diff --git a/ünïcødé/файл.txt b/ünïcødé/файл.txt" in diff


def test_delete_ref_and_has_commit(repo, tmp_path):
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/3", "s")
    assert snapshots.has_commit(repo, snapshot["commit_sha"])
    snapshots.delete_snapshot_ref(repo, "refs/runner/snapshots/3")
    snapshots.delete_snapshot_ref(repo, "refs/runner/snapshots/3")  # already gone: fine
    assert git(repo, "for-each-ref", "refs/runner") == ""
    assert snapshots.has_commit(repo, snapshot["commit_sha"])  # the object stays until gc
    assert not snapshots.has_commit(repo, "0" * 40)
    assert not snapshots.has_commit(repo, "--all")
    assert not snapshots.has_commit(tmp_path / "gone", snapshot["commit_sha"])


def test_bad_arguments_and_missing_repositories(repo, tmp_path):
    with pytest.raises(GitError, match="must start with refs/"):
        snapshots.create_snapshot(repo, "snapshots/1", "s")
    with pytest.raises(GitError, match="Not a valid"):
        snapshots.restore_snapshot(repo, "--hard")
    with pytest.raises(GitError):
        snapshots.restore_snapshot(repo, "0" * 40)
    with pytest.raises(GitError):
        snapshots.compare(repo, "0" * 40)
    with pytest.raises(NotARepository):
        snapshots.create_snapshot(tmp_path / "gone", "refs/runner/snapshots/1", "s")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepository):
        snapshots.create_snapshot(plain, "refs/runner/snapshots/1", "s")
    assert git(repo, "status", "--porcelain") == ""


def test_restore_after_the_agent_committed(repo):
    """HEAD moved by the agent stays where it is; only the files go back."""
    snapshot = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "pre-run")
    state = tree_state(repo)
    write(repo, {"feature.py": "feature\n"})
    agent_commit = commit_all(repo, "agent work")
    snapshots.restore_snapshot(repo, snapshot["commit_sha"])
    assert head(repo) == agent_commit
    assert tree_state(repo) == state
    assert git(repo, "status", "--porcelain") == " D feature.py\n"


def test_line_counts_from_the_patch_match_gits_numstat(repo, monkeypatch):
    """Counts are read off the patch; git's own --numstat (the fallback) must agree, type changes
    (shown by git as a deletion plus an addition) included."""
    base = snapshots.create_snapshot(repo, "refs/runner/snapshots/1", "base")
    _mutate(repo)
    (repo / "src" / "app.py").unlink()
    os.symlink("README.md", repo / "src" / "app.py")  # a type change
    write(repo, {"tricky.txt": "--- a/not-a-header\n+++ b/nor-this\n-\n+\n@@ -1 +1 @@\n"})
    from_patch = snapshots.compare(repo, base["commit_sha"])
    assert {f["path"]: f["change_type"] for f in from_patch["files"]}["src/app.py"] == "modified"
    assert {f["path"]: f["additions"] for f in from_patch["files"]}["tricky.txt"] == 5
    monkeypatch.setattr(snapshots, "_patch_counts", lambda patch, raw: None)
    assert snapshots.compare(repo, base["commit_sha"]) == from_patch
