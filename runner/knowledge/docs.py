"""Managed docs (SPEC §9): `docs/ai/PROJECT_MAP.md`, `docs/ai/DATABASE_SCHEMA.md`,
`docs/ai/ARCHITECTURE_DIAGRAMS.md` and the root `CHANGELOG_AI.md`, kept in the repository itself.

Runner writes only between `<!-- runner:auto:begin NAME -->` and `<!-- runner:auto:end NAME -->`;
every byte outside the markers is the humans' and is written back exactly as it was read. A missing
file is created with a heading and its block; a file without the block gets it appended.

The changelog block holds one entry per run, newest first, each opened by a
`<!-- runner:entry run=<id> -->` marker so a run's entry is found again (and replaced, never
duplicated) when its refresh is retried.
"""
import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from runner.knowledge import diagrams
from runner.knowledge import map as project_map
from runner.knowledge import schema as project_schema
from workspaces.git import GitError, run_git

log = logging.getLogger(__name__)

# git's empty tree: the base of a comparison in a repository without commits.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Rows of the map written into PROJECT_MAP.md; GET /map pages through all of them.
MAX_DOC_ROWS = 2000
MAX_DOC_SYMBOLS = 12
MAX_DOC_DEPENDENCIES = 8


@dataclass(frozen=True)
class ManagedDoc:
    slug: str
    title: str
    path: str
    block: str


DOCS = (
    ManagedDoc("project-map", "Project map", "docs/ai/PROJECT_MAP.md", "project-map"),
    ManagedDoc("database-schema", "Database schema", "docs/ai/DATABASE_SCHEMA.md", "database-schema"),
    ManagedDoc("architecture-diagrams", "Architecture diagrams", "docs/ai/ARCHITECTURE_DIAGRAMS.md", "architecture-diagrams"),
    ManagedDoc("changelog", "AI changelog", "CHANGELOG_AI.md", "changelog"),
)
BY_SLUG = {doc.slug: doc for doc in DOCS}
MANAGED_PATHS = frozenset(doc.path for doc in DOCS)
INTRO = (
    "Maintained by Runner: the section between the `runner:auto` markers is regenerated from the "
    "repository; anything written outside the markers is kept as it is."
)


# --- blocks ------------------------------------------------------------------------------------


def begin_marker(name):
    return f"<!-- runner:auto:begin {name} -->"


def end_marker(name):
    return f"<!-- runner:auto:end {name} -->"


def _marker(kind, name):
    return re.compile(rf"<!--[ \t]*runner:auto:{kind}[ \t]+{re.escape(name)}[ \t]*-->")


def read_block(text, name):
    """The content of block `name` (as `set_block` was given it), or None when there is none."""
    begin = _marker("begin", name).search(text)
    if not begin:
        return None
    end = _marker("end", name).search(text, begin.end())
    inner = text[begin.end() : end.start() if end else len(text)]
    return inner[1:] if inner.startswith("\n") else inner


def set_block(text, name, content):
    """`text` with block `name` holding `content`; nothing outside the markers changes.

    A begin marker without an end marker gets its end put right after the new content, so text
    after the lone marker stays outside the block rather than being taken for generated text.
    """
    if content and not content.endswith("\n"):
        content += "\n"
    begin = _marker("begin", name).search(text)
    if begin:
        end = _marker("end", name).search(text, begin.end())
        if end:
            return text[: begin.end()] + "\n" + content + text[end.start() :]
        return text[: begin.end()] + "\n" + content + end_marker(name) + text[begin.end() :]
    if text and not text.endswith("\n"):
        text += "\n"
    if text and not text.endswith("\n\n"):
        text += "\n"
    return f"{text}{begin_marker(name)}\n{content}{end_marker(name)}\n"


# --- rendering -----------------------------------------------------------------------------------


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text):
    text = str(text)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_map(rows):
    languages = {}
    for row in rows:
        languages[row["language"] or "other"] = languages.get(row["language"] or "other", 0) + 1
    total = sum(row["lines"] for row in rows)
    summary = ", ".join(f"{language} {count}" for language, count in sorted(languages.items(), key=lambda i: (-i[1], i[0])))
    lines = [
        f"{len(rows)} files, {total} lines" + (f" ({summary})." if summary else "."),
        "",
        "| File | Language | Lines | Top-level symbols | Depends on |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for row in rows[:MAX_DOC_ROWS]:
        symbols = [f"{_code(s['name'])} {s['kind']}" for s in row["symbols"][:MAX_DOC_SYMBOLS]]
        if len(row["symbols"]) > MAX_DOC_SYMBOLS:
            symbols.append(f"+{len(row['symbols']) - MAX_DOC_SYMBOLS} more")
        targets = sorted({entry["path"] for entry in row["imports"] if entry["path"]})
        dependencies = [_code(target) for target in targets[:MAX_DOC_DEPENDENCIES]]
        if len(targets) > MAX_DOC_DEPENDENCIES:
            dependencies.append(f"+{len(targets) - MAX_DOC_DEPENDENCIES} more")
        lines.append(
            f"| {_cell(_code(row['path']))} | {_cell(row['language'] or '')} | {row['lines']} | "
            f"{_cell(', '.join(symbols))} | {_cell(', '.join(dependencies))} |"
        )
    if len(rows) > MAX_DOC_ROWS:
        lines += ["", f"… and {len(rows) - MAX_DOC_ROWS} more files (the API's project map lists every file)."]
    return "\n".join(lines) + "\n"


def render_schema(schema):
    if not schema["tables"]:
        return f"No tables: {schema['reason']}\n"
    sources = ", ".join(f"{_code(s['path'])} ({s['kind']})" for s in schema["sources"])
    lines = [f"{len(schema['tables'])} tables, read from {sources}.", ""]
    for table in schema["tables"]:
        lines += [f"### {_code(table['name'])}", "", f"Defined in {_code(table['source'])}.", ""]
        lines += ["| Column | Type | Nullable | Default | Key |", "| --- | --- | --- | --- | --- |"]
        keyed = {column for key in table["foreign_keys"] for column in key["columns"]}
        for column in table["columns"]:
            keys = [k for k, on in (("PK", column["name"] in table["primary_key"]), ("FK", column["name"] in keyed),
                                    ("unique", column["unique"])) if on]
            default = _code(column["default"]) if column["default"] is not None else ""
            lines.append(
                f"| {_cell(_code(column['name']))} | {_cell(_code(column['type']) if column['type'] else '')} | "
                f"{'yes' if column['nullable'] else 'no'} | {_cell(default)} | {', '.join(keys)} |"
            )
        if table["primary_key"]:
            lines += ["", "Primary key: " + ", ".join(_code(c) for c in table["primary_key"]) + "."]
        for key in table["foreign_keys"]:
            on_delete = f", on delete {key['on_delete']}" if key["on_delete"] else ""
            lines += [
                "",
                f"Foreign key {', '.join(_code(c) for c in key['columns'])} → {_code(key['references_table'])} "
                f"({', '.join(_code(c) for c in key['references_columns'])}){on_delete}.",
            ]
        lines.append("")
    return "\n".join(lines)


# --- changelog -----------------------------------------------------------------------------------

_ENTRY = re.compile(r"^<!--[ \t]*runner:entry[ \t]+run=(\d+)[ \t]*-->[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"^### (\d{4}-\d{2}-\d{2}) · Run (\d+) · ?(.*)$")
_FILES_HEADING = "**Files changed**"
_FILE = re.compile(r"^- (`+) ?(.*?) ?\1 \((\w[\w-]*)\)$")
_NO_SUMMARY = "_No summary._"
_NO_FILES = "_None._"


def _escape(text):
    # An HTML comment in a summary could close the block or fake an entry marker.
    return text.replace("<!--", "<\\!--")


def _unescape(text):
    return text.replace("<\\!--", "<!--")


def render_entry(entry):
    """One changelog entry: {"run_id", "date" (YYYY-MM-DD), "title", "summary", "files": [{"path",
    "change_type"}]} as markdown (parse_entries reads it back)."""
    title = _escape(" ".join(entry["title"].split()))
    summary = _escape(entry["summary"].strip()) or _NO_SUMMARY
    files = [f"- {_code(f['path'])} ({f['change_type']})" for f in entry["files"]] or [_NO_FILES]
    return "\n".join(
        [f"<!-- runner:entry run={entry['run_id']} -->", f"### {entry['date']} · Run {entry['run_id']} · {title}", "",
         summary, "", _FILES_HEADING, "", *files]
    ) + "\n"


def _chunks(block):
    """(text before the first entry, [(run id, entry text)])."""
    starts = list(_ENTRY.finditer(block))
    if not starts:
        return block, []
    chunks = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(block)
        chunks.append((int(match[1]), block[match.start() : end]))
    return block[: starts[0].start()], chunks


def upsert_entry(block, entry):
    """The changelog block with `entry` first, or in place of the same run's earlier entry."""
    preamble, chunks = _chunks(block)
    new = render_entry(entry)
    rendered, replaced = [], False
    for run_id, text in chunks:
        if run_id == entry["run_id"]:
            rendered.append(new)
            replaced = True
        else:
            rendered.append(text.rstrip("\n") + "\n")
    if not replaced:
        rendered.insert(0, new)
    return (preamble if preamble.strip() else "") + "\n".join(rendered)


def parse_entries(block):
    """The entries of a changelog block, as render_entry was given them (newest first)."""
    entries = []
    for run_id, text in _chunks(block or "")[1]:
        lines = text.split("\n")[1:]
        heading = _HEADING.match(lines[0]) if lines else None
        if not heading:
            continue
        body = lines[1:]
        marks = [i for i, line in enumerate(body) if line.strip() == _FILES_HEADING]
        files = []
        if marks:
            for line in body[marks[-1] + 1 :]:
                match = _FILE.match(line.strip())
                if match:
                    files.append({"path": match[2], "change_type": match[3]})
            body = body[: marks[-1]]
        summary = _unescape("\n".join(body).strip())
        entries.append(
            {
                "run_id": run_id,
                "date": heading[1],
                "title": _unescape(heading[3].strip()),
                "summary": "" if summary == _NO_SUMMARY else summary,
                "files": files,
            }
        )
    return entries


def changelog(repo_dir):
    """The entries of the repository's CHANGELOG_AI.md ([] when it has none)."""
    doc = BY_SLUG["changelog"]
    target = safe_path(repo_dir, doc.path)
    text = _read(target) if target else None
    return parse_entries(read_block(text, doc.block)) if text else []


# --- files ---------------------------------------------------------------------------------------


def safe_path(root, relative):
    """`root/relative` when no part of it is a symbolic link (a repository, or an agent, could point
    `docs/ai` anywhere on the disk); else None."""
    path = Path(root)
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return None
    return path


def _read(path):
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def read_doc(repo_dir, doc):
    """The doc's markdown in the tree at `repo_dir` (undecodable bytes replaced), or None."""
    target = safe_path(repo_dir, doc.path)
    text = _read(target) if target is not None else None
    return None if text is None else text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


def generated_blocks(directory):
    """{block name: content} of the map, schema and diagrams blocks for the tree at `directory`."""
    files = project_map.source_files(directory)
    rows = project_map.build_map(directory, files)
    schema = project_schema.build_schema(directory, files)
    return {
        "project-map": render_map(rows),
        "database-schema": render_schema(schema),
        "architecture-diagrams": diagrams.markdown(rows, schema),
    }


def write_docs(directory, entry=None):
    """Refresh every managed doc's block in the tree at `directory` (and add or replace the
    changelog `entry` when given). Returns the paths whose content changed, in DOCS order."""
    blocks = generated_blocks(directory)
    changed = []
    for doc in DOCS:
        target = safe_path(directory, doc.path)
        if target is None or target.is_dir():
            log.warning("managed doc %s is a symbolic link or a folder; left alone", doc.path)
            continue
        try:
            current = _read(target)
            text = current if current is not None else f"# {doc.title}\n\n{INTRO}\n\n"
            if doc.block == "changelog":
                existing = read_block(text, doc.block) or ""
                new = set_block(text, doc.block, upsert_entry(existing, entry) if entry else existing)
            else:
                new = set_block(text, doc.block, blocks[doc.block])
            if new != current:
                _write(target, new)
                changed.append(doc.path)
        except OSError as exc:
            # A file where a folder should be (docs/ai as a file), a read-only tree: the other docs
            # still get written, and the code they describe is not held back by its docs.
            log.warning("managed doc %s not written: %s", doc.path, exc)
    return changed


def refresh_for_run(run_id, worktree, summary):
    """Refresh the managed docs in a run's worktree and add (or, on a retried refresh, replace) the
    run's changelog entry; return the doc paths that changed (none when the run changed nothing).

    For the run job, before the post_run snapshot of a completed run, so the docs travel with the
    run's changes on its branch. Takes the repository lock itself (to compare the worktree with the
    run's pre_run snapshot): call it without holding that lock.
    """
    from runner.extensions import db
    from runner.models import Run, utcnow

    run = db.session.get(Run, run_id)
    files = run_changes(run, worktree)
    if not files:
        return []  # a run that changed nothing has nothing to document (nor to commit)
    entry = {
        "run_id": run.id,
        "date": utcnow().date().isoformat(),
        "title": run.title,
        "summary": summary or "",
        "files": files,
    }
    return write_docs(worktree, entry)


def run_changes(run, worktree):
    """[{"path", "change_type"}] the run made in its worktree since its pre_run snapshot (the managed
    docs themselves left out)."""
    from runner import projects
    from runner.extensions import db
    from runner.models import Snapshot
    from workspaces import repository, snapshots

    query = (
        db.select(Snapshot.commit_sha)
        .where(Snapshot.run_id == run.id, Snapshot.kind == "pre_run")
        .order_by(Snapshot.id.desc())
        .limit(1)
    )
    base = db.session.scalar(query)
    if not base or not snapshots.has_commit(worktree, base):
        base = repository.head_sha(worktree) or EMPTY_TREE
    with projects.repository_lock(run.project_id):
        compared = snapshots.compare(worktree, base)
    return [
        {"path": f["path"], "change_type": f["change_type"]}
        for f in compared["files"]
        if f["path"] not in MANAGED_PATHS
    ]


def regenerate_project(project_id):
    """Refresh the blocks in the project's checkout of its default branch (uncommitted: Runner never
    commits there, see `discard_generated`); returns the paths that changed."""
    from runner import projects

    with projects.repository_lock(project_id):
        return write_docs(projects.repo_dir(project_id))


def discard_generated(repo_dir):
    """Put the managed docs of a checkout back as HEAD has them (untracked ones removed), so a
    fast-forward that brings newer versions of them is not refused over generated edits.
    Returns the paths reset. The caller holds the repository lock."""
    status = run_git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all", "--",
         *sorted(MANAGED_PATHS)],
        cwd=repo_dir,
    )
    reset = []
    for entry in filter(None, status.split("\0")):
        code, path = entry[:2], entry[3:]
        target = safe_path(repo_dir, path)
        if code == "??":
            if target is not None and target.is_file():
                target.unlink()
        else:
            run_git(["checkout", "-q", "HEAD", "--", path], cwd=repo_dir)
        reset.append(path)
    return reset


def doc_states(repo_dir):
    """[{"slug", "title", "path", "exists", "updated_at"}] of the managed docs in a checkout:
    `updated_at` is the last commit touching the file, or its modification time when it differs
    from HEAD (regenerated, not yet committed)."""
    status = run_git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=all", "--",
         *sorted(MANAGED_PATHS)],
        cwd=repo_dir,
    )
    changed = {entry[3:] for entry in status.split("\0") if entry}
    states = []
    for doc in DOCS:
        target = safe_path(repo_dir, doc.path)
        exists = target is not None and target.is_file()
        updated = None
        if exists and doc.path not in changed:
            updated = _last_commit_time(repo_dir, doc.path)
        if exists and updated is None:
            updated = dt.datetime.fromtimestamp(os.stat(target).st_mtime, dt.timezone.utc)
        states.append({"slug": doc.slug, "title": doc.title, "path": doc.path, "exists": exists, "updated_at": updated})
    return states


def _last_commit_time(repo_dir, path):
    try:
        out = run_git(["log", "-1", "--format=%cI", "--", path], cwd=repo_dir).strip()
    except GitError:
        return None
    return dt.datetime.fromisoformat(out).astimezone(dt.timezone.utc) if out else None
