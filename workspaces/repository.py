"""A project's repository on disk: checking its URL, cloning it, fast-forwarding its default branch,
and moving it aside when the project is archived.

Network operations take `env` and `secrets` from `workspaces.credentials.git_env` and a `timeout`;
a URL is always passed after `--`, so one starting with `-` can never be read as an option.
"""
import errno
import os
import posixpath
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from workspaces.git import Diverged, GitError, NotARepository, run_git

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# git@host:owner/repo.git — git's scp-like syntax: no "://", and no "/" before the first ":".
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>.+)$")
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# "Receiving objects:  45% (9/20)", "remote: Counting objects: 100% (5/5), done."
_PROGRESS = re.compile(r"^(?:remote: )?(?P<phase>[A-Z][a-z]+ [a-z]+):\s+(?P<percent>\d{1,3})%")
PROGRESS_INTERVAL = 0.5
# The directory every network git command without a repository runs in: discovery then finds no
# enclosing repository whose config (insteadOf rewrites, remote names) could change the meaning.
_NEUTRAL_CWD = "/"

_SUPPORTED = "use https://host/path, ssh://host/path or git@host:path"


def validate_url(url, allow_local):
    """The repository URL, normalized; `ValueError` with a message for the user when unacceptable.

    Accepted: https://, ssh://, scp-like `user@host:path`, and — only when `allow_local` — file://
    URLs and absolute local paths (which may contain spaces; nothing else may contain whitespace).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("The repository URL is empty.")
    url = url.strip()
    if _CONTROL.search(url):
        raise ValueError("The repository URL contains control characters.")
    if url.startswith("-"):
        raise ValueError("The repository URL must not start with '-'.")

    match = _SCHEME.match(url)
    if match:
        scheme = match[1].lower()
        if scheme == "http":
            raise ValueError("Plain http:// is not supported; use https://.")
        if scheme in ("https", "ssh"):
            return _network_url(url, scheme)
        if scheme == "file":
            _require_local(allow_local)
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise ValueError("A file:// URL must name an absolute path on this server (file:///path).")
            return "file://" + posixpath.normpath(parts.path)
        raise ValueError(f"Unsupported URL scheme {scheme}://; {_SUPPORTED}.")

    if url.startswith("/"):
        _require_local(allow_local)
        return os.path.normpath(url)
    if re.match(r"^[A-Za-z0-9+.-]+::", url):
        # git's "<transport>::<address>" form reaches remote helpers such as ext:: (runs commands).
        raise ValueError(f"Unsupported repository URL; {_SUPPORTED}.")
    if any(char.isspace() for char in url):
        raise ValueError("The repository URL contains whitespace.")
    match = _SCP.match(url)
    if match and not url.startswith(("./", "../", "~")):
        user, host = match["user"], match["host"]
        if not _HOST.match(host) or (user is not None and (user.startswith("-") or ":" in user)):
            raise ValueError(f"Not a valid host in {url!r}; {_SUPPORTED}.")
        return url
    if allow_local:
        raise ValueError(f"Local repository paths must be absolute; otherwise {_SUPPORTED}.")
    raise ValueError(f"Unsupported repository URL; {_SUPPORTED}.")


def _require_local(allow_local):
    if not allow_local:
        raise ValueError("Local repositories are not allowed on this server (RUNNER_ALLOW_LOCAL_REPOS is off).")


def _network_url(url, scheme):
    if any(char.isspace() for char in url):
        raise ValueError("The repository URL contains whitespace.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates it
    except ValueError as exc:
        raise ValueError(f"The repository URL is malformed ({exc}).") from None
    if not parts.hostname:
        raise ValueError("The repository URL has no host.")
    if parts.hostname.startswith("-"):
        raise ValueError("The repository host must not start with '-'.")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if userinfo:
        if scheme == "https":
            raise ValueError(
                "Do not put credentials in the repository URL; put the token in git.httpsToken."
            )
        if parts.password is not None:
            raise ValueError("Do not put a password in the repository URL; put the key in git.sshKeyPath.")
    if parts.path in ("", "/"):
        raise ValueError("The repository URL names no repository path.")
    netloc = f"{userinfo}@{hostport.lower()}" if userinfo else hostport.lower()
    normalized = f"{scheme}://{netloc}{parts.path}"
    return f"{normalized}?{parts.query}" if parts.query else normalized


def remote_default_branch(url, env=None, timeout=None, secrets=()):
    """The branch the remote's HEAD points to, or None (an empty or detached remote)."""
    out = run_git(
        ["ls-remote", "--symref", "--", url, "HEAD"], cwd=_NEUTRAL_CWD, env=env, timeout=timeout, secrets=secrets
    )
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[len("ref: ") : -len("\tHEAD")].removeprefix("refs/heads/")
    return None


def clone(url, dest, branch=None, env=None, timeout=None, secrets=(), on_progress=None):
    """Clone `url` into `dest` and return the branch checked out (None if the remote HEAD is detached).

    git works in a hidden sibling directory that is renamed to `dest` only once the clone is
    complete, so a failed, timed-out or killed clone never leaves a partial repository at `dest`
    (a sibling left by a killed process is removed by the next clone of `dest`).
    `on_progress(phase, percent)` gets git's own phase names ("Receiving objects", "Resolving
    deltas", "Updating files", …), at most about twice a second plus each phase's start and end.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise GitError(f"Cannot clone into {dest}: it already exists.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest.name}.cloning-"
    for stale in dest.parent.glob(f"{_glob_escape(prefix)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
    try:
        args = ["clone", "--progress", "--origin", "origin"]
        if branch:
            args.append(f"--branch={branch}")
        progress = _ProgressReporter(on_progress) if on_progress else None
        run_git(
            [*args, "--", url, staging],
            cwd=dest.parent,
            env=env,
            timeout=timeout,
            secrets=secrets,
            on_stderr_line=progress,
        )
        checked_out = _current_branch(staging)
        try:
            os.rename(staging, dest)
        except OSError as exc:
            raise GitError(f"Cannot move the clone into {dest}: {exc.strerror}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return checked_out


def _glob_escape(text):
    return re.sub(r"([*?\[])", r"[\1]", text)


class _ProgressReporter:
    """Turns git's progress lines into `on_progress(phase, percent)` calls, throttled."""

    def __init__(self, on_progress):
        self.on_progress = on_progress
        self.phase, self.percent, self.at = None, None, 0.0

    def __call__(self, line):
        match = _PROGRESS.match(line)
        if not match:
            return
        phase, percent = match["phase"], min(int(match["percent"]), 100)
        now = time.monotonic()
        if phase == self.phase and percent == self.percent:
            return
        # Always report a phase's first and final figure; in between, at most every PROGRESS_INTERVAL.
        if phase == self.phase and percent < 100 and now - self.at < PROGRESS_INTERVAL:
            return
        self.phase, self.percent, self.at = phase, percent, now
        self.on_progress(phase, percent)


def fast_forward(repo, branch, env=None, timeout=None, secrets=()):
    """Fetch `branch` from origin and fast-forward the local `branch`, checked out in `repo`, to it.

    Never merges or rebases: a local branch with commits origin lacks raises `Diverged` and is left
    as it was. Returns {"before", "after", "changed_files"}: the paths (added, modified or deleted)
    between the two commits, for re-indexing; `before` is None when the branch had no commit yet.
    """
    _require_repository(repo)
    if not branch or branch.startswith("-") or any(char.isspace() for char in branch):
        raise GitError(f"Not a valid branch name: {branch!r}.")
    ref, remote_ref = f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"
    checked_out = run_git(["symbolic-ref", "-q", "HEAD"], cwd=repo).strip()
    if checked_out != ref:
        raise GitError(f"Cannot fast-forward '{branch}': the checkout is on {checked_out or 'a detached HEAD'}.")
    before = _resolve(repo, ref)
    # Only this branch, no tags: a tag moved upstream would otherwise fail the pull for nothing.
    fetch = ["fetch", "--no-tags", "origin", f"+{ref}:{remote_ref}"]
    run_git(fetch, cwd=repo, env=env, timeout=timeout, secrets=secrets)
    target = _resolve(repo, remote_ref)
    if target is None:
        raise GitError(f"origin has no branch '{branch}'.")
    if before == target:
        return {"before": before, "after": before, "changed_files": []}
    if before is not None and not _is_ancestor(repo, before, target):
        where = "is ahead of" if _is_ancestor(repo, target, before) else "has diverged from"
        raise Diverged(
            f"The local branch '{branch}' {where} origin/{branch} (local {before[:12]}, origin "
            f"{target[:12]}): a fast-forward is impossible, and Runner never merges or rebases."
        )
    run_git(["merge", "--ff-only", "-q", target], cwd=repo, timeout=timeout)
    after = _resolve(repo, ref)
    if before is None:
        listing = run_git(["ls-tree", "-r", "-z", "--name-only", after], cwd=repo)
    else:
        listing = run_git(["diff", "--name-only", "-z", "--no-renames", before, after], cwd=repo)
    return {"before": before, "after": after, "changed_files": [path for path in listing.split("\0") if path]}


def archive(repo_dir, archive_root):
    """Move `repo_dir` to `archive_root/<name>-<UTC timestamp>` and return the new path.

    A linked worktree kept elsewhere would lose its repository: archive the directory holding both.
    """
    source, root = Path(repo_dir), Path(archive_root)
    if not source.exists():
        raise FileNotFoundError(errno.ENOENT, "nothing to archive", str(source))
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target, n = root / f"{source.name}-{stamp}", 1
    while target.exists():
        n += 1
        target = root / f"{source.name}-{stamp}-{n}"
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(source, target)
    return target


def head_sha(repo):
    """The commit HEAD points to, or None on a branch without commits."""
    _require_repository(repo)
    return _resolve(repo, "HEAD")


def is_repository(path):
    """Whether `path` is the top of a git working tree (a directory inside one does not count)."""
    if not os.path.isdir(path):
        return False
    try:
        top = run_git(["rev-parse", "--show-toplevel"], cwd=path).strip()
    except GitError:
        return False
    return os.path.realpath(top) == os.path.realpath(path)


def _require_repository(repo):
    if not is_repository(repo):
        raise NotARepository(f"No git repository at {os.fspath(repo)}.")


def _current_branch(repo):
    try:
        return run_git(["symbolic-ref", "-q", "--short", "HEAD"], cwd=repo).strip() or None
    except GitError as exc:
        if exc.returncode == 1:
            return None
        raise


def _resolve(repo, rev):
    try:
        return run_git(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], cwd=repo).strip()
    except GitError as exc:
        if exc.returncode == 1:
            return None
        raise


def _is_ancestor(repo, ancestor, descendant):
    try:
        run_git(["merge-base", "--is-ancestor", ancestor, descendant], cwd=repo)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True
