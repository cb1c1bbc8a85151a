"""Run telemetry: the files a run changed, the commands its agent ran (output kept as blob files
behind signed, expiring URLs), its diff against the base snapshot, and the review summary (SPEC §7).

The agent job feeds it (`record_command`, `update_files`); the API reads it. Diffs always come from
`workspaces.snapshots.compare()` against the run's `pre_run` snapshot: the working tree while the
run is live, the `post_run` snapshot once it has one.
"""
import datetime as dt
import logging
import re
from pathlib import Path, PurePosixPath

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from runner import projects
from runner.errors import ApiError, NotFound
from runner.extensions import db
from runner.models import AgentEvent, CommandExecution, Snapshot, WorkspaceFile, utcnow
from workspaces import snapshots
from workspaces.git import GitError

log = logging.getLogger(__name__)

PATH_MAX = 1024  # workspace_files.path; longer paths are left out rather than fail the run
EMPTY_DIFF = {"files": [], "diff": "", "stats": {"files_changed": 0, "additions": 0, "deletions": 0}}
LIVE_STATUSES = ("running", "paused")


# --- the run's base and its diff ---------------------------------------------------------------


def _snapshot(run_id, kind, after=None):
    query = db.select(Snapshot).where(Snapshot.run_id == run_id, Snapshot.kind == kind)
    if after is not None:
        query = query.where(Snapshot.id > after)
    return db.session.scalar(query.order_by(Snapshot.id.desc()).limit(1))


def run_diff(run):
    """compare()'s {files, diff, stats} of the run's latest attempt against its pre_run snapshot:
    against the post_run snapshot once there is one, else against the worktree as it is now.
    Nothing yet (no pre_run snapshot): an empty diff."""
    base = _snapshot(run.id, "pre_run")
    if base is None:
        return EMPTY_DIFF
    projects.require_snapshot_commit(base)
    post = _snapshot(run.id, "post_run", after=base.id)
    if post is not None:
        projects.require_snapshot_commit(post)
        return snapshots.compare(projects.repo_dir(run.project_id), base.commit_sha, post.commit_sha)
    from jobs.runs import worktree_path

    worktree = worktree_path(run)
    if not (worktree / ".git").exists():
        raise ApiError(
            f"The worktree of run {run.id} is gone and the run has no post_run snapshot.",
            status=409,
            slug="diff-unavailable",
            title="Diff is not available",
            runId=run.id,
        )
    try:
        return snapshots.compare(worktree, base.commit_sha, "current")
    except GitError as exc:  # the worktree changed under us (removed mid-read)
        raise ApiError(str(exc), status=409, slug="diff-unavailable", title="Diff is not available", runId=run.id)


def file_diff(diff, row):
    """The section of a unified diff (compare()'s `diff`) about one workspace file."""
    header = f"diff --git a/{row.old_path or row.path} b/{row.path}\n"
    sections = []
    for section in diff.split("\ndiff --git ") if diff else []:
        section = section if section.startswith("diff --git ") else "diff --git " + section
        # A type change (file ↔ symlink) is two sections with the same header.
        if section.startswith(header):
            sections.append(section.rstrip("\n") + "\n")
    return "".join(sections)


# --- workspace_files -----------------------------------------------------------------------------


def refresh_files(run_id, changes):
    """Make the run's workspace_files rows match compare()'s `files`: upsert changed paths, delete
    rows of paths no longer changed. The caller commits."""
    rows = {row.path: row for row in db.session.scalars(db.select(WorkspaceFile).where(WorkspaceFile.run_id == run_id))}
    now = utcnow()
    current = set()
    for change in changes["files"]:
        path = change["path"]
        if len(path) > PATH_MAX or path in current:
            continue
        current.add(path)
        values = {
            "change_type": change["change_type"],
            "old_path": (change["old_path"] or "")[:PATH_MAX] or None,
            "additions": change["additions"],
            "deletions": change["deletions"],
            "binary": change["binary"],
        }
        row = rows.get(path)
        if row is None:
            db.session.add(WorkspaceFile(run_id=run_id, path=path, updated_at=now, **values))
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
    for path, row in rows.items():
        if path not in current:
            db.session.delete(row)


def update_files(run_id, worktree, base_sha, other="current"):
    """Recompute the run's workspace_files from git and commit; a git failure is logged, never
    fatal to the run (the rows catch up at the next refresh)."""
    try:
        changes = snapshots.compare(worktree, base_sha, other)
    except (GitError, OSError) as exc:
        log.warning("run %s: could not compare the worktree: %s", run_id, exc)
        return
    refresh_files(run_id, changes)
    db.session.commit()


# --- command_executions --------------------------------------------------------------------------


def _tool_id(data):
    value = data.get("tool_use_id") or data.get("item_id")
    return str(value)[:200] if value not in (None, "") else None


def _exit_code(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -(2**31) <= value < 2**31 else None


def blob_root():
    return Path(current_app.config["DATA_DIR"]) / "blobs"


def _write_blob(run_id, command_id, stream, text):
    relative = f"runs/{run_id}/{command_id}.{stream}"
    path = blob_root() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if isinstance(text, str) else str(text), encoding="utf-8", errors="replace")
    return relative


def record_command(run_id, item, now=None):
    """Fold one adapter event (command_started / command_finished) into command_executions.

    A finish is matched to its start by the agent's tool id (Claude's tool_use_id, codex's item
    id); a finish without a start still makes a row. Output goes to blob files. The caller commits.
    """
    data = item.get("data") or {}
    now = now or utcnow()
    tool_id = _tool_id(data)
    command = str(data.get("command") or item.get("message") or "")
    cwd = str(data["cwd"])[:PATH_MAX] if data.get("cwd") else None
    if item["event_type"] == "command_started":
        row = CommandExecution(run_id=run_id, tool_id=tool_id, command=command, cwd=cwd, started_at=now)
        db.session.add(row)
        return row
    if item["event_type"] != "command_finished":
        return None
    row = None
    if tool_id is not None:
        row = db.session.scalar(
            db.select(CommandExecution)
            .where(
                CommandExecution.run_id == run_id,
                CommandExecution.tool_id == tool_id,
                CommandExecution.finished_at.is_(None),
            )
            .order_by(CommandExecution.id.desc())
            .limit(1)
        )
    if row is None:
        row = CommandExecution(run_id=run_id, tool_id=tool_id, command=command, cwd=cwd)
        db.session.add(row)
    row.exit_code = _exit_code(data.get("exit_code"))
    row.finished_at = now
    row.cwd = row.cwd or cwd
    if row.started_at is not None:
        row.duration_ms = max(0, int((now - row.started_at).total_seconds() * 1000))
    db.session.flush()  # its id names the blobs
    stdout = data.get("stdout", data.get("output"))
    stderr = data.get("stderr")
    if stdout is not None:
        row.stdout_path = _write_blob(run_id, row.id, "stdout", stdout)
    if stderr is not None:
        row.stderr_path = _write_blob(run_id, row.id, "stderr", stderr)
    return row


# --- signed blob URLs ----------------------------------------------------------------------------

BLOB_STREAMS = ("stdout", "stderr")


def _blob_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="runner.blob-url")


def blob_url(command, stream):
    """An absolute URL serving the command's stdout or stderr without a bearer token, for
    BLOB_URL_TTL_SECONDS; None when there is no such output."""
    if getattr(command, f"{stream}_path") is None:
        return None
    token = _blob_serializer().dumps({"c": command.id, "s": stream})
    return url_for("runs.Blob", token=token, _external=True)


def read_blob(token):
    """The text behind a signed blob token; 403 when tampered or expired, 404 when it is gone."""
    try:
        claims = _blob_serializer().loads(token, max_age=current_app.config["BLOB_URL_TTL_SECONDS"])
    except BadSignature:  # SignatureExpired included
        claims = None
    if not isinstance(claims, dict) or claims.get("s") not in BLOB_STREAMS or not isinstance(claims.get("c"), int):
        raise ApiError(
            "This output link is invalid or has expired; fetch the command again for a fresh one.",
            status=403,
            slug="invalid-blob-url",
            title="Invalid or expired link",
        )
    command = db.session.get(CommandExecution, claims["c"])
    relative = command and getattr(command, f"{claims['s']}_path")
    path = blob_root() / relative if relative else None
    if path is None or not path.is_file():
        raise NotFound("This output is no longer stored.")
    return path.read_text(encoding="utf-8", errors="replace")


# --- summary -------------------------------------------------------------------------------------

TEST_COMMAND = re.compile(
    r"(^|[\s;&|(/])("
    r"pytest|py\.test|python[\d.]*\s+-m\s+(pytest|unittest)|tox|nox|"
    r"(npm|pnpm|yarn|bun)\s+(run\s+)?test|npx\s+(jest|vitest|mocha)|jest|vitest|mocha|"
    r"go\s+test|cargo\s+test|(bundle\s+exec\s+)?(rspec|rake\s+test)|phpunit|"
    r"mvn\s+(-\S+\s+)*test|(\./)?gradlew?\s+test|dotnet\s+test|make\s+(test|check)|ctest|mix\s+test"
    r")(\s|$|;|&|\|)"
)
MIGRATION = re.compile(r"(^|/)(migrations?|alembic|db/migrate)/|(^|/)schema\.(sql|rb|prisma|graphql)$|\.sql$")
MANIFESTS = {
    "package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "requirements.txt", "setup.cfg",
    "setup.py", "pyproject.toml", "poetry.lock", "Pipfile", "Pipfile.lock", "Gemfile", "Gemfile.lock",
    "go.mod", "go.sum", "Cargo.toml", "Cargo.lock", "composer.json", "composer.lock", "pom.xml",
    "build.gradle", "build.gradle.kts", "mix.exs",
}
REQUIREMENTS = re.compile(r"^requirements[\w.-]*\.(txt|in)$")
CI_CONFIG = re.compile(
    r"^(\.github/|\.gitlab-ci\.yml$|\.circleci/|Jenkinsfile$|\.travis\.yml$|azure-pipelines\.yml$|[^/]+\.ya?ml$)"
    r"|(^|/)(Dockerfile[^/]*|docker-compose[^/]*\.ya?ml|compose\.ya?ml)$"
)
SECRETS = re.compile(
    r"AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{36}|"
    r"xox[abpr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}|"
    r"(?i:(password|passwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\s*[:=]\s*['\"]?[^\s'\"]{4,})"
)
LARGE_DIFF_LINES = 500
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def is_test_command(command):
    return bool(TEST_COMMAND.search(command or ""))


def _added_secrets(diff):
    """Paths whose added lines look like they hold a secret."""
    found, path = [], None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
        elif line.startswith("+") and path and path not in found and SECRETS.search(line):
            found.append(path)
    return found


def _is_doc(path):
    return path.startswith("docs/") or "/docs/" in path or PurePosixPath(path).suffix.lower() in (".md", ".rst", ".adoc")


def risks(files, diff, tests):
    paths = [f["path"] for f in files]
    found = []

    def risk(level, reason, matched):
        if matched:
            found.append({"level": level, "reason": reason, "paths": matched})

    risk("high", "Database migrations or schema files changed", [p for p in paths if MIGRATION.search(p)])
    risk("high", "Secrets-like strings were added", _added_secrets(diff))
    failing = [t for t in tests if t["exit_code"] not in (0, None)]
    if failing:
        found.append({"level": "high", "reason": f"{len(failing)} test command(s) failed", "paths": []})
    risk("medium", "Files were deleted", [f["path"] for f in files if f["change_type"] == "deleted"])
    risk(
        "medium",
        "Dependency manifests changed",
        [p for p in paths if PurePosixPath(p).name in MANIFESTS or REQUIREMENTS.match(PurePosixPath(p).name)],
    )
    risk("medium", "Configuration or CI files changed", [p for p in paths if CI_CONFIG.search(p)])
    changed = sum((f["additions"] or 0) + (f["deletions"] or 0) for f in files)
    if changed > LARGE_DIFF_LINES:
        largest = sorted(files, key=lambda f: (f["additions"] or 0) + (f["deletions"] or 0), reverse=True)
        found.append(
            {"level": "medium", "reason": f"Large diff: {changed} changed lines", "paths": [f["path"] for f in largest[:10]]}
        )
    return found


def token_usage(run_id):
    totals = {field: 0 for field in TOKEN_FIELDS}
    cost = None
    for data in db.session.scalars(
        db.select(AgentEvent.data).where(AgentEvent.run_id == run_id, AgentEvent.event_type == "token_usage")
    ):
        data = data if isinstance(data, dict) else {}
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        for field in TOKEN_FIELDS:
            value = data.get(field, usage.get(field))
            if isinstance(value, int) and not isinstance(value, bool):
                totals[field] += value
        if isinstance(data.get("total_cost_usd"), (int, float)) and not isinstance(data.get("total_cost_usd"), bool):
            cost = (cost or 0) + data["total_cost_usd"]
    return {**totals, "total_cost_usd": cost}


def summary(run):
    """SPEC §7's review summary of a run."""
    changes = run_diff(run)
    files = changes["files"]
    tests = [
        {"command_id": c.id, "command": c.command, "exit_code": c.exit_code, "duration_ms": c.duration_ms}
        for c in db.session.scalars(
            db.select(CommandExecution).where(CommandExecution.run_id == run.id).order_by(CommandExecution.id)
        )
        if is_test_command(c.command)
    ]
    duration_ms = None
    if run.started_at:
        end = run.finished_at or utcnow()
        duration_ms = max(0, int((end - run.started_at) / dt.timedelta(milliseconds=1)))
    return {
        "changed_files": files,
        "risks": risks(files, changes["diff"], tests),
        "tests": tests,
        "docs": [f for f in files if _is_doc(f["path"])],
        "token_usage": token_usage(run.id),
        "duration_ms": duration_ms,
    }
