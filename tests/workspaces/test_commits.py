"""Committing a run's worktree on its branch and pushing the commit, against the real git binary:
what goes into the commit (and what stays out), its author and message, the refusals (nothing to
commit, wrong branch, no worktree), and pushes to a bare origin — new branch, fast-forward,
non-fast-forward refused without force, the default branch refused, credentials over HTTP."""
import shutil

import pytest

from gitrepo import HTTP_TOKEN, commit, git, head, make_repo, write
from workspaces import commits
from workspaces.credentials import git_credentials
from workspaces.git import GitError, NotARepository
from workspaces.worktrees import create_worktree, run_branch

AUTHOR = ("Ada Reviewer", "ada@example.com")


@pytest.fixture
def repo(tmp_path):
    """A project checkout on main, cloned from a bare origin (as Runner's clone job leaves it)."""
    seed = make_repo(
        tmp_path / "seed",
        {".gitignore": "*.log\n", "README.md": "# demo\n", "src/app.py": "print('hi')\n", "src/old.py": "old\n"},
    )
    git(tmp_path, "clone", "-q", "--bare", seed, tmp_path / "origin.git")
    git(tmp_path, "clone", "-q", tmp_path / "origin.git", tmp_path / "project" / "repo")
    return tmp_path / "project" / "repo"


@pytest.fixture
def origin(repo, tmp_path):
    return tmp_path / "origin.git"


@pytest.fixture
def worktree(repo, tmp_path):
    return create_worktree(repo, tmp_path / "project" / "worktrees" / "run-7-1", run_branch(7), "main")


def _agent_work(worktree):
    """What an agent leaves: an edit, a new file in a new folder, a deletion, an ignored log."""
    write(worktree, {"README.md": "# demo\n\nNow documented.\n", "docs/new.md": "new\n", "debug.log": "noise\n", "src/old.py": None})


def test_commit_takes_edits_new_files_and_deletions_but_not_ignored_files(repo, worktree):
    main_head = head(repo)
    _agent_work(worktree)

    result = commits.commit_worktree(
        worktree, "runner/run-7", "Document the demo", "Added docs and cleaned up.", [("Runner-Run", 7)], author=AUTHOR
    )

    assert result["sha"] == head(worktree) == head(repo, "runner/run-7")
    assert result["parent"] == main_head and result["branch"] == "runner/run-7"
    assert sorted(result["changes"]) == [("A", "docs/new.md"), ("D", "src/old.py"), ("M", "README.md")]
    files = git(worktree, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert sorted(files) == [".gitignore", "README.md", "docs/new.md", "src/app.py"]
    assert git(worktree, "show", "HEAD:README.md") == "# demo\n\nNow documented.\n"
    # Ignored files stay on disk, out of the commit; nothing else is left outstanding.
    assert (worktree / "debug.log").exists()
    assert git(worktree, "status", "--porcelain") == ""
    assert git(worktree, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == "Ada Reviewer <ada@example.com>|Ada Reviewer <ada@example.com>\n"
    assert git(worktree, "log", "-1", "--format=%B") == "Document the demo\n\nAdded docs and cleaned up.\n\nRunner-Run: 7\n\n"
    assert git(worktree, "log", "-1", "--format=%(trailers:key=Runner-Run,valueonly)").strip() == "7"
    # The project's own checkout and its default branch did not move.
    assert head(repo) == head(repo, "main") == main_head
    assert git(repo, "status", "--porcelain") == ""


def test_without_a_summary_the_message_names_the_changed_files(worktree):
    _agent_work(worktree)
    commits.commit_worktree(worktree, "runner/run-7", "  Document\nthe   demo ", None, [("Runner-Run", 7)], author=AUTHOR)
    assert git(worktree, "log", "-1", "--format=%B") == (
        "Document the demo\n\n3 files changed: modified README.md, added docs/new.md, deleted src/old.py\n\nRunner-Run: 7\n\n"
    )


def test_nothing_to_commit_makes_no_commit(worktree):
    before = head(worktree)
    write(worktree, {"only.log": "ignored\n"})
    with pytest.raises(commits.NothingToCommit, match="Nothing to commit"):
        commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)
    assert head(worktree) == before
    # A second commit after a first one: nothing outstanding then either.
    write(worktree, {"a.txt": "a\n"})
    commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)
    with pytest.raises(commits.NothingToCommit):
        commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)


def test_a_worktree_off_its_branch_is_refused(worktree):
    write(worktree, {"a.txt": "a\n"})
    git(worktree, "checkout", "-q", "--detach")
    with pytest.raises(commits.OffBranch, match="detached HEAD"):
        commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)
    git(worktree, "checkout", "-q", "-b", "elsewhere")
    with pytest.raises(commits.OffBranch, match="on elsewhere, not on its branch 'runner/run-7'"):
        commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)


def test_a_worktree_that_is_gone_is_not_a_repository(repo, worktree):
    shutil.rmtree(worktree)
    with pytest.raises(NotARepository):
        commits.commit_worktree(worktree, "runner/run-7", "t", author=AUTHOR)


def test_summaries_are_trimmed_for_a_commit_body():
    assert commits.trim_summary("\n\nfirst  \n\n\n\nsecond\r\nthird\0\n\n") == "first\n\nsecond\nthird"
    long = " ".join(["word"] * 400)
    trimmed = commits.trim_summary(long)
    assert len(trimmed) <= commits.SUMMARY_MAX_CHARS + 2 and trimmed.endswith("word …")
    many = "\n".join(f"line {i}" for i in range(40))
    assert commits.trim_summary(many).splitlines() == [f"line {i}" for i in range(14)] + ["line 14 …"]
    assert commits.trim_summary(None) == ""


def test_a_long_change_list_is_cut():
    changes = [("A", f"f{i}.txt") for i in range(25)]
    line = commits.changed_files_line(changes)
    assert line.startswith("25 files changed: added f0.txt, added f1.txt") and line.endswith("added f9.txt and 15 more")


# --- push ----------------------------------------------------------------------------------------


def _committed(worktree, files=None):
    write(worktree, files or {"feature.txt": "feature\n"})
    return commits.commit_worktree(worktree, "runner/run-7", "Feature", author=AUTHOR)["sha"]


def test_push_creates_then_fast_forwards_the_run_branch_on_origin(repo, worktree, origin):
    first = _committed(worktree)
    assert commits.push_commit(repo, first, "runner/run-7") == {"remote": str(origin), "result": "new branch"}
    assert head(origin, "runner/run-7") == first
    assert commits.push_commit(repo, first, "runner/run-7")["result"] == "up to date"
    second = _committed(worktree, {"feature.txt": "feature, better\n"})
    assert commits.push_commit(repo, second, "runner/run-7")["result"] == "fast-forward"
    assert git(origin, "show", "runner/run-7:feature.txt") == "feature, better\n"
    assert head(origin, "main") == head(repo, "main")


def test_a_non_fast_forward_is_refused_with_gits_reason_and_never_forced(repo, worktree, origin, tmp_path):
    sha = _committed(worktree)
    # Someone else pushed to that branch first.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", origin, other)
    git(other, "checkout", "-q", "-b", "runner/run-7")
    theirs = commit(other, {"theirs.txt": "theirs\n"}, "their work")
    git(other, "push", "-q", "origin", "runner/run-7")

    with pytest.raises(commits.PushRejected) as caught:
        commits.push_commit(repo, sha, "runner/run-7")
    assert caught.value.reason == "rejected (fetch first)"
    assert "refused the push of runner/run-7: rejected (fetch first)" in caught.value.message
    assert "Updates were rejected because the remote contains work" in caught.value.message
    assert head(origin, "runner/run-7") == theirs


def test_the_default_branch_is_never_pushed_to(repo, worktree, origin):
    sha = _committed(worktree)
    before = head(origin, "main")
    with pytest.raises(commits.PushRejected, match="never pushes to the default branch"):
        commits.push_commit(repo, sha, "main", protected=("main",))
    assert head(origin, "main") == before


def test_pushing_to_an_unreachable_remote_fails(repo, worktree, tmp_path):
    sha = _committed(worktree)
    git(repo, "remote", "set-url", "origin", (tmp_path / "nowhere.git").as_uri())
    with pytest.raises(GitError, match="does not appear to be a git repository") as caught:
        commits.push_commit(repo, sha, "runner/run-7", timeout=30)
    assert not isinstance(caught.value, commits.PushRejected)


def test_push_over_https_style_auth_uses_the_token_and_never_shows_it(repo, worktree, tmp_path, http_server):
    sha = _committed(worktree)
    git(tmp_path, "clone", "-q", "--bare", tmp_path / "origin.git", http_server.project_root / "private.git")
    url = http_server.url("private.git")
    git(repo, "remote", "set-url", "origin", url)

    with git_credentials("wrong-" + HTTP_TOKEN) as (env, secrets):
        with pytest.raises(GitError) as caught:
            commits.push_commit(repo, sha, "runner/run-7", env=env, secrets=secrets, timeout=60)
    assert "Authentication failed" in caught.value.message
    assert HTTP_TOKEN not in caught.value.message and HTTP_TOKEN not in " ".join(caught.value.command)

    with git_credentials(HTTP_TOKEN) as (env, secrets):
        result = commits.push_commit(repo, sha, "runner/run-7", env=env, secrets=secrets, timeout=60)
    assert result == {"remote": url, "result": "new branch"}
    assert head(http_server.project_root / "private.git", "runner/run-7") == sha
    assert HTTP_TOKEN not in (repo / ".git" / "config").read_text()
