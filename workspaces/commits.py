"""Committing a run's worktree on its branch and pushing that commit to the project's remote.

A commit takes everything outstanding (tracked changes, untracked files that are not ignored,
deletions) with plumbing (`write-tree`, `commit-tree`, `update-ref`), so no user config (templates,
cleanup modes, editors) and no hook shapes it, and the branch only moves if it still points where it
did. A push names its source commit and destination branch explicitly and is never forced.

Callers hold the repository lock (`workspaces.locks`): the branch refs live in the shared `.git`.
"""
import re

from workspaces.git import GitError, NotARepository, commit_tree, run_git, scrub
from workspaces.snapshots import CHANGE_TYPES, DEFAULT_AUTHOR

# How much of a summary goes into a commit message: a short body, not the agent's whole report.
SUMMARY_MAX_CHARS = 1000
SUMMARY_MAX_LINES = 15
# Paths named in a changed-files line before "and N more".
LINE_MAX_PATHS = 10
# Lines git reads as the end of a commit message: a patch divider (`git interpret-trailers`) and the
# scissors line of `git commit --cleanup=scissors` (every trailer reader, `%(trailers)` included).
_DIVIDER = re.compile(r"---(\s|$)")
_SCISSORS = "------------------------ >8 ------------------------"


class NothingToCommit(GitError):
    """The worktree holds nothing that is not already in its branch's last commit."""


class OffBranch(GitError):
    """The worktree is not on the branch it should be on (detached, or another branch checked out)."""


class PushRejected(GitError):
    """The remote (or git, before talking to it) refused the push. `reason` is git's short account
    of it ("rejected (fetch first)", "rejected (non-fast-forward)", "remote rejected (…)")."""

    def __init__(self, message, returncode=None, *, reason=None, **kwargs):
        super().__init__(message, returncode, **kwargs)
        self.reason = reason


def commit_worktree(worktree, branch, title, summary=None, trailers=(), author=DEFAULT_AUTHOR):
    """Commit everything outstanding in `worktree`, which must be on `branch`; return
    {"sha", "parent", "branch", "changes": [(status letter, path)], "message"}.

    The message is `title`, a blank line, `summary` (trimmed; a changed-files line when None or
    empty), a blank line and `trailers` [(key, value)]. Author and committer are `author`
    (name, email). Raises `NothingToCommit` rather than making an empty commit, `OffBranch` when
    HEAD is not `branch`, `NotARepository` when the worktree is gone.
    """
    if not branch or branch.startswith("-"):
        raise GitError(f"Not a valid branch name: {branch!r}.")
    ref = f"refs/heads/{branch}"
    checked_out = _symbolic_head(worktree)
    if checked_out != ref:
        where = checked_out.removeprefix("refs/heads/") if checked_out else "a detached HEAD"
        raise OffBranch(f"The worktree is on {where}, not on its branch '{branch}'; nothing was committed.")
    parent = _resolve(worktree, ref)
    # The worktree's own index: after the commit it matches the new HEAD, as after `add -A` + `commit`.
    run_git(["add", "-A"], cwd=worktree)
    tree = run_git(["write-tree"], cwd=worktree).strip()
    changes = _changes(worktree, parent, tree)
    if not changes:
        raise NothingToCommit(f"Nothing to commit: the worktree matches the last commit of '{branch}'.")
    message = build_message(title, summary or changed_files_line(changes), trailers)
    sha = commit_tree(worktree, tree, parent, message, author)
    # Compare-and-swap: if anything moved the branch since `parent` was read, nothing changes.
    run_git(["update-ref", "-m", f"runner: {_one_line(title)}", ref, sha, parent or ""], cwd=worktree)
    return {"sha": sha, "parent": parent, "branch": branch, "changes": changes, "message": message}


def build_message(title, summary, trailers=()):
    """`title`, blank line, `summary`, blank line, `Key: value` trailers — the paragraph git reads
    as trailers (`git interpret-trailers`, `%(trailers)`) is the last one, and only ours."""
    parts = [_inert(_one_line(title)) or "Runner commit"]
    body = trim_summary(summary)
    if body:
        parts.append("\n".join(_inert(line) for line in body.split("\n")))
    if trailers:
        parts.append("\n".join(f"{key}: {_one_line(str(value))}" for key, value in trailers))
    return "\n\n".join(parts) + "\n"


def trim_summary(text, max_chars=SUMMARY_MAX_CHARS, max_lines=SUMMARY_MAX_LINES):
    """A summary fit for a commit body: no NULs or trailing spaces, runs of blank lines collapsed,
    at most `max_lines` lines and `max_chars` characters (cut at a word, marked with "…")."""
    if not text:
        return ""
    lines, blank = [], False
    for line in text.replace("\0", "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if not line:
            blank = bool(lines)
            continue
        if blank:
            lines.append("")
            blank = False
        lines.append(line)
    cut = len(lines) > max_lines
    body = "\n".join(lines[:max_lines])
    if len(body) > max_chars:
        head = body[:max_chars]
        # Cut at the last space, unless that would throw most of the text away (one long word).
        space = head.rfind(" ")
        body, cut = (head[:space] if space > max_chars // 2 else head), True
    body = body.rstrip()
    return body + " …" if cut and body else body


def changed_files_line(changes, max_paths=LINE_MAX_PATHS):
    """"3 files changed: added a.txt, modified README.md, deleted old.py" (the first `max_paths`)."""
    if not changes:
        return ""
    named = [f"{CHANGE_TYPES.get(status, 'changed')} {path}" for status, path in changes[:max_paths]]
    more = len(changes) - len(named)
    count = f"{len(changes)} file{'s' if len(changes) != 1 else ''} changed"
    return f"{count}: {', '.join(named)}" + (f" and {more} more" if more else "")


def push_commit(repo, sha, branch, remote="origin", *, protected=(), env=None, timeout=None, secrets=()):
    """Push commit `sha` of `repo` to `refs/heads/<branch>` on `remote`: never forced, never to a
    `protected` branch (e.g. the default branch), no tags, no submodules.

    Returns {"remote": its URL with credentials scrubbed, "result": "new branch" | "fast-forward" |
    "up to date"}. Raises `PushRejected` with git's reason when the remote or git refuses (a
    non-fast-forward, a hook), `GitError` when the remote cannot be reached or authentication fails.
    """
    if not branch or branch.startswith("-") or branch in protected:
        raise PushRejected(f"Refusing to push to '{branch}': Runner never pushes to the default branch.", reason="protected branch")
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha or ""):
        raise GitError(f"Not a commit id: {sha!r}.")
    ref = f"refs/heads/{branch}"
    try:
        run_git(["check-ref-format", ref], cwd=repo)
    except NotARepository:
        raise
    except GitError:
        raise PushRejected(f"Not a valid branch name: {branch!r}.", reason="invalid branch") from None
    if _resolve(repo, sha) is None:
        raise GitError(f"Commit {sha[:12]} is not in the project's repository (was it cloned again since?).")
    url = scrub(run_git(["remote", "get-url", "--push", "--", remote], cwd=repo).strip(), secrets)
    # No `+` and no --force: git refuses anything but a fast-forward (or a new branch).
    args = ["push", "--porcelain", "--no-follow-tags", "--recurse-submodules=no", "--", remote, f"{sha}:{ref}"]
    try:
        out = run_git(args, cwd=repo, env=env, timeout=timeout, secrets=secrets)
    except GitError as exc:
        status = _porcelain(exc.stdout.decode("utf-8", "replace"), ref)
        if status and status[0] == "!":
            reason = status[1]
            raise PushRejected(
                f"{url} refused the push of {branch}: {reason}.\n{exc.message}",
                exc.returncode,
                reason=reason,
                command=exc.command,
            ) from None
        raise
    status = _porcelain(out, ref)
    result = {"*": "new branch", "=": "up to date"}.get(status[0] if status else "", "fast-forward")
    return {"remote": url, "result": result}


def _porcelain(out, ref):
    """(flag, summary) of the porcelain line of `ref` in `git push --porcelain` output, or None."""
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].endswith(f":{ref}"):
            summary = fields[2].strip()
            # "[rejected] (fetch first)" -> "rejected (fetch first)"
            return fields[0], re.sub(r"^\[([^\]]+)\]\s*", r"\1 ", summary).strip()
    return None


def _changes(worktree, parent, tree):
    if parent:
        out = run_git(["diff-tree", "-r", "-z", "--no-renames", "--name-status", parent, tree], cwd=worktree)
        fields = [field for field in out.split("\0") if field]
        return list(zip(fields[0::2], fields[1::2]))
    out = run_git(["ls-tree", "-r", "-z", "--name-only", tree], cwd=worktree)
    return [("A", path) for path in out.split("\0") if path]


def _symbolic_head(worktree):
    try:
        return run_git(["symbolic-ref", "-q", "HEAD"], cwd=worktree).strip() or None
    except NotARepository:
        raise
    except GitError as exc:
        if exc.returncode == 1:
            return None  # detached
        raise


def _resolve(repo, rev):
    try:
        return run_git(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], cwd=repo).strip()
    except NotARepository:
        raise
    except GitError as exc:
        if exc.returncode == 1:
            return None
        raise


def _inert(line):
    """`line` of a title or summary, indented one space if git would read it as the end of the
    message: text from a user or an agent must neither hide Runner's trailers nor pass off its own
    (a summary "…\\n---\\nRunner-Run: 999" would otherwise be the trailer `git interpret-trailers`
    finds, and a scissors line would leave `%(trailers)` with none)."""
    return " " + line if _DIVIDER.match(line) or _SCISSORS in line else line


def _one_line(text):
    return " ".join((text or "").split())
