"""run_git: scrubbed errors, timeouts that kill git's children, and an environment that cannot
redirect git to another repository."""
import time

import pytest

from gitrepo import git, make_repo, process_alive
from workspaces.git import GitError, GitTimeout, NotARepository, run_git, run_git_bytes, scrub


def test_scrub_replaces_secrets_and_url_credentials():
    text = "fatal: 'https://tok3n@example.com/r.git' and https://me:pw@example.com/ and tok3n again"
    assert scrub(text, ("tok3n",)) == (
        "fatal: 'https://***@example.com/r.git' and https://***@example.com/ and *** again"
    )
    # ssh user names are not credentials; an ssh password is.
    assert scrub("ssh://git@host/r.git ssh://git:pw@host/r") == "ssh://git@host/r.git ssh://git:***@host/r"
    # URL-encoded, as git may print it.
    assert scrub("https://h/?t=a%2Fb", ("a/b",)) == "https://h/?t=***"
    assert scrub("", ("x",)) == ""


def test_error_message_and_command_are_scrubbed(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a": "a"})
    with pytest.raises(GitError) as caught:
        run_git(["show", "S3CRET-value"], cwd=repo, secrets=("S3CRET-value",))
    assert "S3CRET" not in caught.value.message
    assert "***" in caught.value.message
    assert caught.value.returncode == 128
    assert caught.value.command == ["show", "***"]
    assert str(caught.value) == caught.value.message


def test_timeout_kills_git_and_its_children(tmp_path):
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(GitTimeout) as caught:
        # A git alias runs a shell, which starts a sleep: a grandchild of ours.
        run_git(["-c", f"alias.hang=!sleep 30 & echo $! > {pid_file}; wait", "hang"], cwd=tmp_path, timeout=1)
    assert time.monotonic() - started < 10
    assert "timed out after 1 seconds" in caught.value.message
    assert not process_alive(int(pid_file.read_text()))


def test_missing_directory_is_not_a_repository(tmp_path):
    with pytest.raises(NotARepository):
        run_git(["status"], cwd=tmp_path / "gone")


def test_directory_inside_another_repository_is_not_mistaken_for_it(tmp_path):
    outer = make_repo(tmp_path / "outer", {"a": "a"})
    inner = outer / "workspaces" / "7"
    inner.mkdir(parents=True)
    with pytest.raises(NotARepository):
        run_git(["rev-parse", "--show-toplevel"], cwd=inner)


def test_inherited_git_variables_do_not_redirect_git(tmp_path, monkeypatch):
    one = make_repo(tmp_path / "one", {"a": "a"})
    other = make_repo(tmp_path / "other", {"b": "b"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    assert run_git(["rev-parse", "--show-toplevel"], cwd=one).strip() == str(one)
    assert run_git(["ls-files"], cwd=one) == "a\n"


def test_bytes_and_input(tmp_path):
    repo = make_repo(tmp_path / "repo", {"a": "a"})
    sha = run_git(["hash-object", "-w", "--stdin"], cwd=repo, input=b"\x00\xff binary").strip()
    assert run_git_bytes(["cat-file", "blob", sha], cwd=repo) == b"\x00\xff binary"
    assert git(repo, "cat-file", "-t", sha).strip() == "blob"
