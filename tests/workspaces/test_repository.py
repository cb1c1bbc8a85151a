"""Repositories: URL checks, clone (file:// and token-authenticated smart HTTP), fast-forward pulls,
archiving, and the failures a job must report cleanly."""
import os
import re
import threading
import time
from pathlib import Path

import pytest

from gitrepo import HTTP_TOKEN, commit_all, git, head, make_repo, process_alive, write
from workspaces import repository
from workspaces.credentials import git_credentials, git_env
from workspaces.git import Diverged, GitError, GitTimeout, NotARepository


# --- validate_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, allow_local, expected",
    [
        ("https://GitHub.com/Owner/Repo.git", False, "https://github.com/Owner/Repo.git"),
        ("  https://example.com/r.git\n", False, "https://example.com/r.git"),
        ("https://example.com:8443/group/sub/r", False, "https://example.com:8443/group/sub/r"),
        ("ssh://git@example.com:2222/owner/r.git", False, "ssh://git@example.com:2222/owner/r.git"),
        ("git@github.com:owner/repo.git", False, "git@github.com:owner/repo.git"),
        ("github.com:owner/repo", False, "github.com:owner/repo"),
        ("file:///srv/git/r.git", True, "file:///srv/git/r.git"),
        ("/srv/git/../git/r", True, "/srv/git/r"),
        ("/home/me/My Projects/r", True, "/home/me/My Projects/r"),
    ],
)
def test_valid_urls_are_normalized(url, allow_local, expected):
    assert repository.validate_url(url, allow_local) == expected


@pytest.mark.parametrize(
    "url, allow_local, message",
    [
        ("", True, "empty"),
        ("   ", True, "empty"),
        (None, True, "empty"),
        ("http://example.com/r.git", True, "use https"),
        ("https://user:pw@example.com/r.git", True, "git.httpsToken"),
        ("https://ghp_token@example.com/r.git", True, "git.httpsToken"),
        ("ssh://git:pw@example.com/r.git", True, "git.sshKeyPath"),
        ("ftp://example.com/r.git", True, "Unsupported URL scheme"),
        ("git://example.com/r.git", True, "Unsupported URL scheme"),
        ("ext::sh -c touch% /tmp/pwned", True, "Unsupported"),
        ("fd::17", True, "Unsupported"),
        ("-uhttps://example.com/r", True, "must not start with '-'"),
        ("--upload-pack=touch /tmp/x", True, "must not start with '-'"),
        ("git@-oProxyCommand=evil:r", True, "Not a valid host"),
        ("https://example.com/r .git", True, "whitespace"),
        ("https://example.com/r\n.git", True, "control characters"),
        ("/srv/r\x00", True, "control characters"),
        ("https://example.com", True, "no repository path"),
        ("https:///r.git", True, "no host"),
        ("https://-oops/r.git", True, "must not start with '-'"),
        ("file:///srv/r.git", False, "RUNNER_ALLOW_LOCAL_REPOS"),
        ("/srv/r.git", False, "RUNNER_ALLOW_LOCAL_REPOS"),
        ("file://otherhost/srv/r.git", True, "absolute path"),
        ("relative/path", True, "must be absolute"),
        ("relative/path", False, "Unsupported"),
        ("~/r.git", True, "must be absolute"),
    ],
)
def test_invalid_urls_are_refused_with_a_reason(url, allow_local, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        repository.validate_url(url, allow_local)


# --- clone ------------------------------------------------------------------------------------


@pytest.mark.parametrize("branch", ["main", "trunk"])
def test_clone_detects_the_default_branch(tmp_path, branch):
    source = make_repo(tmp_path / "source", {"README.md": "hello\n", "src/app.py": "print(1)\n"}, branch=branch)
    git(source, "branch", "other")
    url = f"file://{source}"
    assert repository.remote_default_branch(url) == branch

    dest = tmp_path / "ws" / "repo"
    assert repository.clone(url, dest) == branch
    assert repository.is_repository(dest)
    assert repository.head_sha(dest) == head(source)
    assert (dest / "src" / "app.py").read_text() == "print(1)\n"
    assert git(dest, "remote", "get-url", "origin").strip() == url
    assert sorted(os.listdir(dest.parent)) == ["repo"]  # the staging directory is gone


def test_clone_of_a_named_branch_and_of_an_empty_repository(tmp_path):
    source = make_repo(tmp_path / "source", {"a": "a"})
    git(source, "checkout", "-q", "-b", "develop")
    write(source, {"b": "b"})
    commit_all(source)
    git(source, "checkout", "-q", "main")
    assert repository.clone(str(source), tmp_path / "dev", branch="develop") == "develop"
    assert (tmp_path / "dev" / "b").exists()

    empty = make_repo(tmp_path / "empty", branch="trunk")
    dest = tmp_path / "empty-clone"
    assert repository.clone(f"file://{empty}", dest) == "trunk"
    assert repository.head_sha(dest) is None


@pytest.mark.parametrize("url", ["file:///nonexistent/repo.git", "/nonexistent/repo", "git@127.0.0.1:r.git"])
def test_failed_clone_leaves_nothing_at_dest(tmp_path, url):
    dest = tmp_path / "ws" / "repo"
    env, _ = git_env(base_env={**os.environ, "GIT_SSH_COMMAND": "false"})
    with pytest.raises(GitError) as caught:
        repository.clone(url, dest, env=env, timeout=30)
    assert caught.value.message
    assert not dest.exists()
    assert os.listdir(dest.parent) == []


def test_clone_refuses_an_occupied_destination(tmp_path):
    source = make_repo(tmp_path / "source", {"a": "a"})
    dest = tmp_path / "repo"
    write(dest, {"precious.txt": "keep me"})
    with pytest.raises(GitError, match="already exists"):
        repository.clone(str(source), dest)
    assert (dest / "precious.txt").read_text() == "keep me"


def test_a_staging_directory_left_by_a_killed_clone_is_cleaned_up(tmp_path):
    source = make_repo(tmp_path / "source", {"a": "a"})
    write(tmp_path, {".repo.cloning-dead1234/half.pack": "junk"})
    repository.clone(str(source), tmp_path / "repo")
    assert sorted(os.listdir(tmp_path)) == ["repo", "source"]


def test_clone_timeout_kills_the_transport_and_leaves_nothing(tmp_path):
    """An ssh remote that never answers (a fake ssh that sleeps): the clone is killed at the timeout."""
    pid_file = tmp_path / "ssh.pid"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    fake_ssh.chmod(0o755)
    env, _ = git_env(base_env={**os.environ, "GIT_SSH_COMMAND": str(fake_ssh)})
    dest = tmp_path / "ws" / "repo"
    started = time.monotonic()
    with pytest.raises(GitTimeout, match="timed out after 1.5 seconds"):
        repository.clone("ssh://git.example.invalid/owner/repo.git", dest, env=env, timeout=1.5)
    assert time.monotonic() - started < 10
    assert not dest.exists() and os.listdir(dest.parent) == []
    assert not process_alive(int(pid_file.read_text()))


def test_clone_reports_progress_throttled_from_the_calling_thread(tmp_path):
    source = make_repo(tmp_path / "source", {f"dir{i % 20}/file{i}.txt": f"{i}\n" * (i % 50 + 1) for i in range(1500)})
    calls = []
    caller = threading.get_ident()

    def on_progress(phase, percent):
        calls.append((phase, percent, time.monotonic(), threading.get_ident()))

    repository.clone(f"file://{source}", tmp_path / "dest", on_progress=on_progress)
    phases = [phase for phase, *_ in calls]
    assert "Receiving objects" in phases
    assert all(thread == caller for *_, thread in calls)
    assert all(0 <= percent <= 100 for _, percent, *_ in calls)
    assert [percent for phase, percent, *_ in calls if phase == "Receiving objects"][-1] == 100
    # Within a phase, only its first and final figures may come closer together than the interval.
    for (phase_a, _, at_a, _), (phase_b, percent_b, at_b, _) in zip(calls, calls[1:]):
        if phase_a == phase_b and percent_b < 100:
            assert at_b - at_a >= repository.PROGRESS_INTERVAL


def test_progress_lines_are_parsed_and_throttled(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(repository.time, "monotonic", lambda: now[0])
    calls = []
    report = repository._ProgressReporter(lambda phase, percent: calls.append((phase, percent)))
    for line, at in [
        ("Cloning into '/x'...", 0),
        ("remote: Enumerating objects: 9, done.", 0),
        ("remote: Counting objects:  50% (5/9)", 0),
        ("Receiving objects:   1% (1/90)", 0.1),
        ("Receiving objects:   2% (2/90)", 0.2),  # too soon
        ("Receiving objects:  40% (36/90), 1.2 MiB | 2 MiB/s", 0.7),
        ("Receiving objects:  41% (37/90)", 0.8),  # too soon
        ("Receiving objects: 100% (90/90), 3 MiB | 2 MiB/s, done.", 0.85),  # a phase's end always
        ("Resolving deltas:   0% (0/3)", 0.86),
        ("Updating files:  33% (1/3)", 0.87),
    ]:
        now[0] = 100.0 + at
        report(line)
    assert calls == [
        ("Counting objects", 50),
        ("Receiving objects", 1),
        ("Receiving objects", 40),
        ("Receiving objects", 100),
        ("Resolving deltas", 0),
        ("Updating files", 33),
    ]


# --- credentials over smart HTTP ----------------------------------------------------------------


@pytest.fixture
def private_remote(tmp_path, http_server):
    source = make_repo(tmp_path / "source", {"README.md": "private\n", "lib/code.py": "x = 1\n"})
    git(tmp_path, "clone", "-q", "--bare", source, http_server.project_root / "private.git")
    return source, http_server.url("private.git")


def test_https_token_reaches_git_only_through_the_environment(tmp_path, private_remote, http_server, isolated_home):
    source, url = private_remote
    # A developer-style global config: the `store` helper, holding a wrong password for this host.
    # Were it consulted, the clone would fail; were it handed the token, the file would change.
    (isolated_home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    stored = f"http://x-access-token:wrong@{url.split('/')[2]}\n"
    (isolated_home / ".git-credentials").write_text(stored)

    dest = tmp_path / "ws" / "repo"
    with git_credentials(HTTP_TOKEN) as (env, secrets):
        assert secrets == (HTTP_TOKEN,)
        assert repository.remote_default_branch(url, env=env, secrets=secrets) == "main"
        assert repository.clone(url, dest, env=env, secrets=secrets, timeout=60) == "main"
    assert (dest / "lib" / "code.py").read_text() == "x = 1\n"
    assert any(auth and auth.startswith("Basic ") for auth in http_server.authorizations)

    assert (isolated_home / ".git-credentials").read_text() == stored
    assert git(dest, "remote", "get-url", "origin").strip() == url
    for directory, _, names in os.walk(dest / ".git"):
        for name in names:
            assert HTTP_TOKEN.encode() not in Path(directory, name).read_bytes(), name

    # Fetching with the token works as well; without it git fails at once instead of prompting.
    write(source, {"new.txt": "new\n"})
    commit_all(source)
    git(source, "push", "-q", http_server.project_root / "private.git", "main")
    env, secrets = git_env(HTTP_TOKEN)
    result = repository.fast_forward(dest, "main", env=env, secrets=secrets, timeout=60)
    assert result["changed_files"] == ["new.txt"]
    with pytest.raises(GitError, match="could not read Username|Authentication failed"):
        repository.fast_forward(dest, "main", env=git_env()[0], timeout=60)


def test_wrong_token_fails_with_a_scrubbed_message(tmp_path, private_remote):
    _, url = private_remote
    wrong = "ghp_wrongTokenValue987654321"
    env, secrets = git_env(wrong)
    dest = tmp_path / "repo"
    with pytest.raises(GitError) as caught:
        repository.clone(url, dest, env=env, secrets=secrets, timeout=60)
    assert "Authentication failed" in caught.value.message
    assert wrong not in caught.value.message and wrong not in repr(caught.value.command)
    assert not dest.exists()


def test_a_scoped_token_goes_to_its_host_only(tmp_path, private_remote):
    _, url = private_remote
    origin = "/".join(url.split("/")[:3])
    env, secrets = git_env(HTTP_TOKEN, token_scope="https://git.example.com")
    with pytest.raises(GitError, match="could not read Username"):
        repository.clone(url, tmp_path / "elsewhere", env=env, secrets=secrets, timeout=60)
    env, secrets = git_env(HTTP_TOKEN, token_scope=origin)
    assert repository.clone(url, tmp_path / "scoped", env=env, secrets=secrets, timeout=60) == "main"


def test_ssh_key_goes_through_git_ssh_command(tmp_path):
    env, secrets = git_env(ssh_key_path="/keys/deploy key")
    assert env["GIT_SSH_COMMAND"] == (
        "ssh -i '/keys/deploy key' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
    )
    assert secrets == ()
    assert "RUNNER_GIT_TOKEN" not in env


# --- fast-forward -------------------------------------------------------------------------------


@pytest.fixture
def upstream_and_clone(tmp_path):
    upstream = make_repo(
        tmp_path / "upstream",
        {"keep.txt": "keep\n", "change.txt": "v1\n", "gone.txt": "bye\n", "docs/a.md": "a\n"},
    )
    clone = tmp_path / "ws" / "repo"
    repository.clone(f"file://{upstream}", clone)
    return upstream, clone


def test_fast_forward_brings_upstream_commits_and_names_the_changed_files(upstream_and_clone):
    upstream, clone = upstream_and_clone
    before = head(clone)
    assert repository.fast_forward(clone, "main") == {"before": before, "after": before, "changed_files": []}

    write(upstream, {"change.txt": "v2\n", "docs/new.md": "new\n"})
    (upstream / "gone.txt").unlink()
    commit_all(upstream, "second")
    write(upstream, {"third.txt": "3\n"})
    after = commit_all(upstream, "third")

    result = repository.fast_forward(clone, "main", timeout=60)
    assert result["before"] == before and result["after"] == after == head(clone)
    assert sorted(result["changed_files"]) == ["change.txt", "docs/new.md", "gone.txt", "third.txt"]
    assert (clone / "change.txt").read_text() == "v2\n"
    assert not (clone / "gone.txt").exists()
    assert git(clone, "status", "--porcelain") == ""


def test_fast_forward_from_an_empty_clone(tmp_path):
    upstream = make_repo(tmp_path / "upstream")
    clone = tmp_path / "repo"
    repository.clone(f"file://{upstream}", clone)
    write(upstream, {"a.txt": "a", "b/c.txt": "c"})
    after = commit_all(upstream)
    result = repository.fast_forward(clone, "main")
    assert result["before"] is None and result["after"] == after
    assert sorted(result["changed_files"]) == ["a.txt", "b/c.txt"]


@pytest.mark.parametrize("upstream_moves", [True, False])
def test_diverged_or_ahead_branch_is_refused_and_left_alone(upstream_and_clone, upstream_moves):
    upstream, clone = upstream_and_clone
    write(clone, {"local.txt": "local work\n"})
    local = commit_all(clone, "local")
    if upstream_moves:
        write(upstream, {"change.txt": "upstream\n"})
        commit_all(upstream, "upstream")
    with pytest.raises(Diverged) as caught:
        repository.fast_forward(clone, "main")
    message = caught.value.message
    assert ("has diverged from" if upstream_moves else "is ahead of") in message
    assert "origin/main" in message and "never merges" in message
    assert head(clone) == local
    assert (clone / "change.txt").read_text() == "v1\n"
    assert git(clone, "status", "--porcelain") == ""


def test_fast_forward_of_a_missing_branch_or_another_checkout_fails_clearly(upstream_and_clone):
    _, clone = upstream_and_clone
    with pytest.raises(GitError, match="checkout is on refs/heads/main"):
        repository.fast_forward(clone, "develop")
    git(clone, "checkout", "-q", "-b", "develop")
    with pytest.raises(GitError, match="couldn't find remote ref"):
        repository.fast_forward(clone, "develop")


def test_repository_deleted_under_us(upstream_and_clone):
    import shutil

    _, clone = upstream_and_clone
    shutil.rmtree(clone / ".git")
    # The directory still exists, but is no repository any more.
    with pytest.raises(NotARepository):
        repository.fast_forward(clone, "main")
    assert not repository.is_repository(clone)
    shutil.rmtree(clone)
    with pytest.raises(NotARepository):
        repository.fast_forward(clone, "main")
    with pytest.raises(NotARepository):
        repository.head_sha(clone)


def test_a_directory_inside_a_repository_is_not_one(tmp_path):
    outer = make_repo(tmp_path / "outer", {"a": "a"})
    (outer / "sub").mkdir()
    assert repository.is_repository(outer)
    assert not repository.is_repository(outer / "sub")
    assert not repository.is_repository(tmp_path / "missing")


# --- archive ------------------------------------------------------------------------------------


def test_archive_moves_the_workspace_aside(upstream_and_clone, tmp_path):
    _, clone = upstream_and_clone
    project = clone.parent
    archived = repository.archive(project, tmp_path / "archive")
    assert not project.exists()
    assert re.fullmatch(r"ws-\d{8}T\d{6}Z", archived.name)
    assert repository.is_repository(archived / "repo")

    project.mkdir()
    again = repository.archive(project, tmp_path / "archive")
    assert again != archived and again.exists()
    with pytest.raises(FileNotFoundError):
        repository.archive(tmp_path / "nothing", tmp_path / "archive")
