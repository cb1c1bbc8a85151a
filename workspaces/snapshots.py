"""Snapshots (SPEC §9): the whole working tree — tracked and untracked files, not ignored ones — kept
as a commit on a hidden ref, restored exactly, and compared.

Everything goes through a temporary index that starts as a copy of the real one, so git's stat cache
spares re-reading unchanged files and HEAD, the branch and the real index are never touched. Works
the same in the main checkout and in linked worktrees (each has its own index). Callers hold the
repository lock.
"""
import contextlib
import os
import shutil
import struct
import uuid
from pathlib import Path

from workspaces.git import GitError, NotARepository, add_config, clean_environ, commit_tree, run_git, run_git_bytes

DEFAULT_AUTHOR = ("Runner", "runner@localhost")
CHANGE_TYPES = {"A": "added", "D": "deleted", "M": "modified", "R": "renamed", "T": "modified"}


def create_snapshot(worktree, ref, message, author=DEFAULT_AUTHOR):
    """Commit everything in `worktree` that is not ignored to `ref` (e.g. refs/runner/snapshots/42).

    The commit's parent is HEAD (none on a branch without commits). Returns {"commit_sha",
    "tree_sha", "file_count"}.
    """
    _check_name(ref, "ref")
    if not ref.startswith("refs/"):
        raise GitError(f"A snapshot ref must start with refs/: {ref!r}.")
    name, email = (author[0] or DEFAULT_AUTHOR[0]), (author[1] or DEFAULT_AUTHOR[1])
    head = _head(worktree)
    with _temporary_index(worktree) as env:
        run_git(["add", "-A"], cwd=worktree, env=env)
        tree = run_git(["write-tree"], cwd=worktree, env=env).strip()
        file_count = _entry_count(env["GIT_INDEX_FILE"])
    commit = commit_tree(worktree, tree, head, message, (name, email))
    run_git(["update-ref", ref, commit], cwd=worktree)
    return {"commit_sha": commit, "tree_sha": tree, "file_count": file_count}


def restore_snapshot(worktree, commit_sha):
    """Make the working tree match the snapshot exactly: contents and executable bits as in the
    snapshot, every other file that is not ignored deleted (and the directories this empties; a
    nested repository the snapshot lacks goes too), ignored files left alone. HEAD, the branch and
    the real index do not move (`git status` afterwards shows the restored state as changes)."""
    _check_name(commit_sha, "snapshot")
    with _temporary_index(worktree) as env:
        # The copied index knows every tracked file and its stat data: read-tree rewrites only what
        # differs from the snapshot (or changed on disk) and deletes what the snapshot lacks.
        run_git(["read-tree", "-u", "--reset", f"{commit_sha}^{{tree}}"], cwd=worktree, env=env)
        # Now the index is the snapshot, so "untracked" means exactly: on disk, not ignored (by the
        # snapshot's own .gitignore), and not in the snapshot.
        leftovers = run_git_bytes(["ls-files", "-z", "--others", "--exclude-standard"], cwd=worktree, env=env)
    _delete(Path(worktree), [os.fsdecode(name) for name in leftovers.split(b"\0") if name])


def compare(worktree, base_sha, other="current"):
    """Changes from snapshot `base_sha` to `other` (another commit, or "current": the working tree as
    a snapshot would capture it). Returns {"files", "diff", "stats"}:

    - files: [{"path", "old_path" (renames, else None), "change_type" (added, modified, deleted,
      renamed), "additions", "deletions" (None for binary files), "binary"}]
    - diff: git's unified diff with rename detection; binary files as git shows them
    - stats: {"files_changed", "additions", "deletions"}
    """
    _check_name(base_sha, "snapshot")
    # Plumbing, so user diff config (noprefix, external drivers, textconv, order files) cannot
    # change the shape; paths unquoted so names read as they are. Line counts come from the patch
    # itself: a --numstat would run every file's diff a second time.
    options = ["-M", "--raw", "-p", "-z", "--no-color", "--src-prefix=a/", "--dst-prefix=b/"]
    if other == "current":
        with _temporary_index(worktree) as env:
            run_git(["add", "-A"], cwd=worktree, env=env)
            # The index against the base tree: the same diff as against a tree written from it,
            # without writing one.
            args = ["diff-index", "--cached", *options, base_sha, "--"]
            out = run_git_bytes(["-c", "core.quotePath=false", *args], cwd=worktree, env=env)
            return _parse_diff(out, lambda: run_git_bytes(_numstat(args), cwd=worktree, env=env))
    _check_name(other, "snapshot")
    args = ["diff-tree", "-r", *options, base_sha, other, "--"]
    out = run_git_bytes(["-c", "core.quotePath=false", *args], cwd=worktree)
    return _parse_diff(out, lambda: run_git_bytes(_numstat(args), cwd=worktree))


def _numstat(args):
    return ["--numstat" if arg == "--raw" else arg for arg in args if arg != "-p"]


def has_commit(repo, commit_sha):
    """Whether `repo` holds commit `commit_sha` (False too when the repository itself is gone)."""
    if not commit_sha or commit_sha.startswith("-"):
        return False
    try:
        run_git(["rev-parse", "-q", "--verify", f"{commit_sha}^{{commit}}"], cwd=repo)
    except NotARepository:
        return False
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


def delete_snapshot_ref(repo, ref):
    """Drop a snapshot's ref (its objects go with the next gc). No error if it is already gone."""
    _check_name(ref, "ref")
    if not ref.startswith("refs/"):
        raise GitError(f"A snapshot ref must start with refs/: {ref!r}.")
    run_git(["update-ref", "-d", ref], cwd=repo)


@contextlib.contextmanager
def _temporary_index(worktree):
    """Yield env with GIT_INDEX_FILE set to a fresh copy of the worktree's index.

    The copy sits beside the real index, inside the git directory: never in the working tree (it
    would snapshot itself) and on the same disk.
    """
    real_index = _git_dir(worktree) / "index"
    temporary = real_index.with_name(f"runner-index-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        try:
            shutil.copyfile(real_index, temporary)
        except FileNotFoundError:
            pass  # no index yet: git starts from an empty one
        env = clean_environ()
        env["GIT_INDEX_FILE"] = str(temporary)
        # A split or sparse index would make the entry count in the header mean something else.
        env = add_config(env, [("core.splitIndex", "false"), ("index.sparse", "false")])
        yield env
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _git_dir(worktree):
    """The git directory of `worktree`: `.git` itself, or where a linked worktree's `.git` file points.

    Read here rather than asked of `git rev-parse --git-path` (a process, ~2 ms of every operation):
    `run_git` stops repository discovery at the worktree's top, so git finds exactly this too.
    """
    dotgit = Path(worktree) / ".git"
    if dotgit.is_dir():
        return dotgit
    try:
        text = dotgit.read_text(encoding="utf-8", errors="surrogateescape")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise NotARepository(f"No git repository at {os.fspath(worktree)}.") from None
    if not text.startswith("gitdir: "):
        raise NotARepository(f"{dotgit} is not a gitdir file.")
    return Path(worktree) / text[len("gitdir: ") :].strip()


def _head(worktree):
    try:
        return run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=worktree).strip()
    except GitError as exc:
        if exc.returncode == 1:
            return None  # a branch without commits yet
        raise


def _entry_count(index_file):
    """The number of entries in an index file, from its header (no git process needed)."""
    try:
        with open(index_file, "rb") as index:
            signature, _version, count = struct.unpack(">4sLL", index.read(12))
    except (FileNotFoundError, struct.error):
        return 0
    if signature != b"DIRC":
        raise GitError(f"{index_file} is not a git index.")
    return count


def _delete(root, names):
    """Delete files (and nested repositories, listed as "dir/") under `root`, then the directories
    that this leaves empty."""
    parents = set()
    for name in names:
        path = root / name
        try:
            if name.endswith("/"):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        parents.update(Path(name.rstrip("/")).parents)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        if parent.parts:
            with contextlib.suppress(OSError):
                (root / parent).rmdir()


def _parse_diff(out, numstat):
    """Parse `--raw -p -z` output (raw records, an empty record, the patch) into compare's shape.
    `numstat()` gives the line counts should the patch not split into the expected sections."""
    reader = _Records(out)
    raw = []
    while out.startswith(b":", reader.pos):
        letter = reader.next().split()[-1][:1].decode()
        paths = [reader.next(), reader.next()] if letter in "RC" else [reader.next()]
        raw.append((letter, paths))
    if raw:
        reader.next()
    patch = out[reader.pos :]
    counts = _patch_counts(patch, raw) or _numstat_counts(numstat(), len(raw))
    files = []
    for (letter, paths), (additions, deletions, binary) in zip(raw, counts):
        files.append(
            {
                "path": _text(paths[-1]),
                "old_path": _text(paths[0]) if len(paths) == 2 else None,
                "change_type": CHANGE_TYPES.get(letter, "modified"),
                "additions": None if binary else additions,
                "deletions": None if binary else deletions,
                "binary": binary,
            }
        )
    return {
        "files": files,
        "diff": _text(patch),
        "stats": {
            "files_changed": len(files),
            "additions": sum(f["additions"] or 0 for f in files),
            "deletions": sum(f["deletions"] or 0 for f in files),
        },
    }


def _patch_counts(patch, raw):
    """[(additions, deletions, binary)] per raw record, counted in the patch; None if the patch does
    not have one section per record (two for a type change, which git shows as delete + add)."""
    sections = patch.split(b"\ndiff --git ") if patch else []
    expected = sum(2 if letter == "T" else 1 for letter, _ in raw)
    if len(sections) != expected or (sections and not sections[0].startswith(b"diff --git ")):
        return None
    counted = []
    for section in sections:
        hunks = section.find(b"\n@@ ")
        header, body = (section, b"") if hunks < 0 else (section[:hunks], section[hunks:])
        # In hunks every line starts with its kind; "---"/"+++" file lines sit in the header.
        counted.append((body.count(b"\n+"), body.count(b"\n-"), b"\nBinary files " in header))
    counts, sections = [], iter(counted)
    for letter, _ in raw:
        parts = [next(sections)] + ([next(sections)] if letter == "T" else [])
        counts.append(
            (sum(p[0] for p in parts), sum(p[1] for p in parts), any(p[2] for p in parts))
        )
    return counts


def _numstat_counts(out, expected):
    reader, counts = _Records(out), []
    while reader.pos < len(out):
        added, deleted, path = reader.next().split(b"\t", 2)
        if not path:  # a rename: its two paths follow
            reader.next(), reader.next()
        binary = added == b"-"
        counts.append((0 if binary else int(added), 0 if binary else int(deleted), binary))
    if len(counts) != expected:
        raise GitError("git's diff output could not be parsed.")
    return counts


class _Records:
    """NUL-terminated records of `-z` output, read in order."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def next(self):
        end = self.data.index(b"\0", self.pos)
        value, self.pos = self.data[self.pos : end], end + 1
        return value


def _text(raw):
    return raw.decode("utf-8", "replace")


def _check_name(value, what):
    if not value or not isinstance(value, str) or value.startswith("-") or any(c.isspace() for c in value):
        raise GitError(f"Not a valid {what}: {value!r}.")
