"""Per-run git worktrees: one checkout and one branch per run attempt, beside the project's own
checkout, so runs of one project proceed at once without touching each other or the default branch.

Callers hold the repository lock (`workspaces.locks`) around these: git's worktree bookkeeping lives
in the shared `.git` directory.
"""
import os
import shutil
from pathlib import Path

from workspaces.git import GitError, run_git

# What `git worktree add` writes into `.git/worktrees/<id>/locked` until the checkout is complete:
# still there after the add, the process was killed half-way.
_INITIALIZING = "initializing"


def run_branch(run_id, attempt=1):
    """The branch of a run attempt: runner/run-<id> for the first, runner/run-<id>-<attempt> after."""
    return f"runner/run-{run_id}" if attempt == 1 else f"runner/run-{run_id}-{attempt}"


def create_worktree(repo, path, branch, start_point):
    """Check out a new `branch`, made at `start_point`, in a new worktree at `path`; return `path`.

    Fails (GitError) if the branch already exists or `path` is taken. The branch tracks nothing, so
    a push from the run can never land on the branch it started from.
    """
    path = Path(path)
    if not branch or branch.startswith("-") or not start_point or start_point.startswith("-"):
        raise GitError(f"Not a valid branch or start point: {branch!r}, {start_point!r}.")
    if _exists(repo, f"refs/heads/{branch}"):
        raise GitError(f"A branch named '{branch}' already exists.")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise GitError(f"Cannot create a worktree at {path}: it already exists.")
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["worktree", "add", "--no-track", "-b", branch, "--", path, start_point], cwd=repo)
    return path


def list_worktrees(repo):
    """Every worktree of `repo`, the main checkout first:
    [{"path", "branch" (short name, None when detached), "head" (None before the first commit),
    "main", "locked", "lock_reason", "prunable" (its directory is gone)}]."""
    out = run_git(["worktree", "list", "--porcelain", "-z"], cwd=repo)
    worktrees, current = [], None
    for field in out.split("\0"):
        if not field:
            current = None
            continue
        key, _, value = field.partition(" ")
        if key == "worktree":
            current = {"path": Path(value), "branch": None, "head": None, "main": not worktrees,
                       "locked": False, "lock_reason": None, "prunable": False}
            worktrees.append(current)
        elif current is None:
            continue
        elif key == "HEAD":
            current["head"] = value if value.strip("0") else None
        elif key == "branch":
            current["branch"] = value.removeprefix("refs/heads/")
        elif key == "locked":
            current["locked"], current["lock_reason"] = True, value or None
        elif key == "prunable":
            current["prunable"] = True
    return worktrees


def remove_worktree(repo, path, delete_branch=False):
    """Remove the worktree at `path`, uncommitted work and all; with `delete_branch`, its branch too.

    A worktree whose directory is already gone is simply forgotten.
    """
    path = Path(path)
    entry = _find(repo, path)
    if path.exists():
        # Twice forced: also a dirty worktree, and one still locked by an add that was killed.
        run_git(["worktree", "remove", "--force", "--force", "--", path], cwd=repo)
    elif entry is not None:
        _unlock(repo, entry)
        run_git(["worktree", "prune", "--expire=now"], cwd=repo)
    if delete_branch and entry is not None and entry["branch"]:
        run_git(["update-ref", "-d", f"refs/heads/{entry['branch']}"], cwd=repo)


def prune_worktrees(repo):
    """Recover after a crash; return the paths of the worktrees dropped.

    Worktrees whose directory was deleted are forgotten (git's stale metadata pruned, locks
    included); a directory left by an add that never finished (no valid `.git` file, or still
    locked as "initializing") is deleted and forgotten. Branches are kept.
    """
    dropped = []
    for entry in list_worktrees(repo):
        if entry["main"]:
            continue
        path = entry["path"]
        half_made = path.exists() and (entry["lock_reason"] == _INITIALIZING or not _valid_gitfile(path))
        if half_made:
            shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            _unlock(repo, entry)
            dropped.append(path)
    run_git(["worktree", "prune", "--expire=now"], cwd=repo)
    return dropped


def _valid_gitfile(path):
    """Whether `path/.git` is a worktree's `gitdir:` file naming an existing directory."""
    try:
        text = (path / ".git").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return False
    if not text.startswith("gitdir: "):
        return False
    gitdir = Path(text[len("gitdir: ") :].strip())
    return (gitdir if gitdir.is_absolute() else path / gitdir).is_dir()


def _unlock(repo, entry):
    if entry["locked"]:
        run_git(["worktree", "unlock", "--", entry["path"]], cwd=repo)


def _find(repo, path):
    target = os.path.realpath(path)
    for entry in list_worktrees(repo):
        if os.path.realpath(entry["path"]) == target:
            return entry
    return None


def _exists(repo, ref):
    try:
        run_git(["rev-parse", "-q", "--verify", ref], cwd=repo)
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True
