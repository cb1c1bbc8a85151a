"""Results computed from a project's checkout (map, schema), kept on disk per state of its tree, so
repeated requests do not parse the repository again.

The state is HEAD plus, when the working tree differs from it, the size and modification time of
each differing file: a pull, a commit or an edit in the checkout all give a new state. Results live
in DATA_DIR/workspaces/projects/<id>/knowledge/<name>.json (beside the checkout, on the disk shared
by every worker).
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

from runner import projects
from workspaces import repository
from workspaces.git import run_git

# Bumped whenever what a cached result holds changes shape or meaning: older files are recomputed.
FORMAT = 1


def tree_state(repo_dir, ignore=frozenset()):
    """(head commit or None, state key) of the working tree at `repo_dir`; `ignore`: paths whose
    changes do not count (the managed docs, which are made from these results)."""
    head = repository.head_sha(repo_dir)
    status = run_git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all"], cwd=repo_dir
    )
    digest = hashlib.sha256()
    dirty = False
    for entry in sorted(filter(None, status.split("\0"))):
        path = entry[3:]
        if path in ignore:
            continue
        dirty = True
        try:
            info = os.stat(Path(repo_dir) / path)
            digest.update(f"{entry}\0{info.st_size}\0{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        except OSError:
            digest.update(f"{entry}\0gone\0".encode("utf-8", "surrogateescape"))
    key = head or "unborn"
    return head, f"{key}+{digest.hexdigest()[:16]}" if dirty else key


def cached(project_id, name, compute, *, ignore=frozenset()):
    """(value, head, state) of `compute()` for the project's checkout, from the cache when the tree
    is in the state the cached value was computed in."""
    repo = projects.repo_dir(project_id)
    head, state = tree_state(repo, ignore)
    path = projects.project_dir(project_id) / "knowledge" / f"{name}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("format") == FORMAT and stored.get("state") == state:
            return stored["value"], head, state
    except (OSError, ValueError):
        pass
    value = compute(repo)
    # Only a result whose tree did not move while it was computed (a pull meanwhile) is kept.
    if tree_state(repo, ignore)[1] == state:
        _write_atomically(path, {"format": FORMAT, "state": state, "value": value})
    return value, head, state


def _write_atomically(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
