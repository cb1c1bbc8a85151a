"""A project's code search index: files cut into chunks on definition boundaries, ranked by BM25.

The engine is tantivy (Rust, through its official Python bindings), one index per project beside
its checkout, independent of Runner's own database. It ranks the top hits of a query without
scoring every matching chunk, which keeps a query of common words on a 10,000-file repository
within milliseconds (SQLite FTS5, tried first, scores every match: 100-500 ms there). Tokens are
ours (see `runner.knowledge.tokenize`), stored in three fields weighed differently: the chunk's
symbol, its path, its body.

- `build` writes a new index and swaps it in with one rename: a search sees the old index or the
  new one, never half of either.
- `update` re-indexes some paths in place, in one commit.
- `search` ranks chunks for a query; any text is a valid query (it is never parsed as syntax).

Chunking (`chunk_file`): Python by its syntax tree (top-level functions and classes; the methods of
long classes), brace languages by a bracket-depth scan of top-level definitions (and the members of
long ones), Markdown by headings, some languages by top-level `def … end` shapes; whatever is left
between definitions, and every file of another kind, in overlapping line windows.
"""
import ast
import dataclasses
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path

import tantivy

from runner.knowledge.tokenize import document, query_terms, word_tokens

INDEX_NAME = "search-index"
SCHEMA_VERSION = "1"
WINDOW_LINES = 60
WINDOW_OVERLAP = 10
# A definition longer than this is cut into its members, or into windows.
MAX_SPAN_LINES = 100
# The longest chunk text kept; a chunk of minified-looking lines would otherwise hold the file.
MAX_CHUNK_CHARS = 16_000
# Query terms kept (the rarest in the index first); a pasted paragraph must not become 200 ORs.
MAX_QUERY_TERMS = 24
SNIPPET_LINES = 5


class IndexMissing(Exception):
    """The project has no usable index: never built, built by another version, or damaged."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str
    symbol: str | None


@dataclasses.dataclass(frozen=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    score: float  # higher is better
    snippet: str
    snippet_start_line: int
    text: str


@dataclasses.dataclass(frozen=True)
class Stats:
    files: int
    chunks: int
    commit: str | None


def project_index_path(project_id):
    """Where a project's index lives: beside its checkout, so archiving or re-cloning the project
    moves it aside too."""
    from runner import projects

    return projects.project_dir(project_id) / INDEX_NAME


# --- chunking -----------------------------------------------------------------------------


@dataclasses.dataclass
class _Span:
    start: int  # 1-based, inclusive
    end: int
    symbol: str | None
    # Spans inside this one, used when it is too long to be one chunk: a list, or a function
    # computing it (brace languages scan a definition's body only when they need to).
    members: object = ()


def chunk_file(path, language, text):
    """The chunks of one file."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return []
    spans = _spans(language, text, lines)
    chunks = []
    for start, end, symbol in _assemble(lines, spans, 1, len(lines), None):
        body = "\n".join(lines[start - 1 : end])
        if _WORDY.search(body):  # not a lone closing brace
            chunks.append(Chunk(path, start, end, body[:MAX_CHUNK_CHARS], symbol))
    return chunks


_WORDY = re.compile(r"\w")


def _spans(language, text, lines):
    if language == "python":
        spans = _python_spans(text)
        return spans if spans is not None else _indent_spans(lines, _INDENT_DEFS["python"])
    if language in _BRACE_LEXERS:
        spans = _brace_spans(language, text)
        return spans if spans is not None else []
    if language == "markdown":
        return _markdown_spans(lines)
    if language in _INDENT_DEFS:
        return _indent_spans(lines, _INDENT_DEFS[language])
    return []


def _assemble(lines, spans, lo, hi, gap_symbol):
    """(start, end, symbol) covering lines lo..hi: each span whole when short enough, else its
    members or windows; what lies between spans in windows labelled `gap_symbol`."""
    out, cursor = [], lo
    for span in _attach_comments(lines, sorted(spans, key=lambda s: (s.start, -s.end)), lo):
        start, end = max(span.start, cursor), min(span.end, hi)
        if start > end:
            continue  # inside a span already taken (a heuristic that overlapped itself)
        if start > cursor:
            out.extend(_gap(lines, cursor, start - 1, gap_symbol))
        if end - start + 1 <= MAX_SPAN_LINES:
            out.append((start, end, span.symbol))
        else:
            members = span.members() if callable(span.members) else span.members
            if members:
                out.extend(_assemble(lines, members, start, end, span.symbol))
            else:
                out.extend(_windows(start, end, span.symbol))
        cursor = end + 1
    if cursor <= hi:
        out.extend(_gap(lines, cursor, hi, gap_symbol))
    return out


_COMMENT_PREFIXES = ("#", "//", "/*", "*", "--", "@", ";;")


def _attach_comments(lines, spans, lo):
    """Spans extended upwards over the comment (or decorator) lines right above them."""
    floor = lo
    for span in spans:
        start = span.start
        while start - 1 >= floor and start - 1 >= 1:
            above = lines[start - 2].strip()
            if not above or not above.startswith(_COMMENT_PREFIXES):
                break
            start -= 1
        if start != span.start:
            span = dataclasses.replace(span, start=start)
        floor = max(floor, span.end + 1)
        yield span


def _gap(lines, start, end, symbol):
    while start <= end and not lines[start - 1].strip():
        start += 1
    while end >= start and not lines[end - 1].strip():
        end -= 1
    if start > end:
        return []
    return _windows(start, end, symbol)


def _windows(start, end, symbol):
    out = []
    while True:
        stop = min(start + WINDOW_LINES - 1, end)
        out.append((start, stop, symbol))
        if stop >= end:
            return out
        start = stop + 1 - WINDOW_OVERLAP


# Python: the syntax tree.

_PY_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _python_spans(text):
    try:
        with warnings.catch_warnings():
            # Invalid escapes and the like in the project's code are its business, not ours.
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return [_python_span(node) for node in tree.body if isinstance(node, _PY_DEFS)]


def _python_span(node, prefix=""):
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    name = prefix + node.name
    members = ()
    if isinstance(node, ast.ClassDef):
        members = [_python_span(child, name + ".") for child in node.body if isinstance(child, _PY_DEFS)]
    return _Span(start, node.end_lineno, name, members)


# Brace languages: a bracket-depth scan over the text with comments and strings blanked out.

_LINE_COMMENT = r"//[^\n]*"
_BLOCK_COMMENT = r"/\*.*?(?:\*/|\Z)"
_HASH_COMMENT = r"(?m:^[ \t]*#[^\n]*)"
_DOUBLE = r'"(?:\\.|[^"\\\n])*"'
_TRIPLE = r'"""(?:.|\n)*?(?:"""|\Z)'
_SINGLE = r"'(?:\\.|[^'\\\n])*'"
_CHAR = r"'(?:\\.|[^'\\\n])'"  # where ' quotes one character (Rust lifetimes stay unmatched)
_BACKTICK = r"`(?:\\.|[^`\\])*(?:`|\Z)"


def _lexer(*parts):
    return re.compile("|".join(parts), re.S)


_JS = _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _DOUBLE, _SINGLE, _BACKTICK)
_JVM = _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _TRIPLE, _DOUBLE, _CHAR)
_BRACE_LEXERS = {
    "javascript": _JS,
    "typescript": _JS,
    "go": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _DOUBLE, _CHAR, _BACKTICK),
    "rust": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _DOUBLE, _CHAR),
    "java": _JVM,
    "kotlin": _JVM,
    "scala": _JVM,
    "swift": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _TRIPLE, _DOUBLE),
    "dart": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _TRIPLE, _DOUBLE, _SINGLE),
    "csharp": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _HASH_COMMENT, _DOUBLE, _CHAR),
    "c": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _HASH_COMMENT, _DOUBLE, _CHAR),
    "cpp": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _HASH_COMMENT, _DOUBLE, _CHAR),
    "php": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _HASH_COMMENT, _DOUBLE, _SINGLE),
    "prisma": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _DOUBLE),
    "graphql": _lexer(_HASH_COMMENT, _TRIPLE, _DOUBLE),
    "protobuf": _lexer(_LINE_COMMENT, _BLOCK_COMMENT, _DOUBLE, _SINGLE),
}

_KEYWORD_NAME = re.compile(
    r"\b(?:function\*?|class|interface|enum|struct|trait|type|namespace|module|object|record|protocol"
    r"|extension|union|mod|fn|fun|def|model|message|service|input|schema)\s+([A-Za-z_$][\w$]*)"
)
_GO_FUNC = re.compile(r"\bfunc\b\s*(?:\([^)]*\)\s*)?([A-Za-z_]\w*)")
_RUST_IMPL = re.compile(r"\bimpl\b(?:\s*<[^{]*?>)?\s+([\w:]+)(?:\s*<[^{]*?>)?(?:\s+for\s+([\w:]+))?")
_DEFINITION = re.compile(f"{_KEYWORD_NAME.pattern}|{_GO_FUNC.pattern}|\\bimpl\\b")
_BINDING = re.compile(r"\b(?:const|let|var|val)\s+([A-Za-z_$][\w$]*)")
_CALL_NAME = re.compile(r"([A-Za-z_$~][\w$]*(?:(?:::|\.|->)[A-Za-z_$~][\w$]*)*)\s*\(")
_ASSIGNED = re.compile(r"([A-Za-z_$][\w$.]*)\s*[:=]")
_NOT_NAMES = frozenset(
    "if for while switch catch return sizeof typeof foreach with elif until unless do else new await "
    "yield throw super this function try finally using lock fixed synchronized match case".split()
)


def _brace_spans(language, text):
    cleaned = _BRACE_LEXERS[language].sub(_blank, text)
    lines = cleaned.split("\n")
    return _blocks(lines, 0, len(lines))


def _blank(match):
    # Keep the line structure; the content (a brace in a string, say) must not count.
    return "\n" * match.group().count("\n") or " "


def _blocks(lines, lo, hi, prefix=""):
    """Top-level statements of lines[lo:hi] that hold a brace block, as spans; None when the
    brackets do not balance (then nothing here is trusted)."""
    spans = []
    depth = parens = 0
    start = opened = None
    for i in range(lo, hi):
        line = lines[i]
        stripped = line.strip()
        if start is None:
            if not stripped:
                continue
            start, opened = i, None
        braces = line.count("{") - line.count("}")
        parens += line.count("(") + line.count("[") - line.count(")") - line.count("]")
        if depth == 0 and opened is None and "{" in line:
            opened = i
        depth += braces
        if depth < 0:
            return None
        if parens < 0:
            parens = 0
        if depth or parens:
            continue
        last = opened if opened is not None else i
        header = " ".join(part.strip() for part in lines[start : last + 1]).split("{", 1)[0]
        # A one-line statement holding braces (`import { a } from "b";`) is no definition, unless it
        # says it is one (`fn f() { 1 }`).
        if opened is not None and (i > start or _DEFINITION.search(header)):
            symbol = _symbol(header)
            name = prefix + symbol if symbol else (prefix[:-1] or None)
            spans.append(_Span(start + 1, i + 1, name, _members(lines, opened, i, name)))
            start = None
        elif not _continues(lines, i + 1, hi):
            start = None
    return spans if depth == 0 else None


def _continues(lines, i, hi):
    """Whether the statement on the line before `i` goes on: its block opens on a line of its own."""
    while i < hi and not lines[i].strip():
        i += 1
    return i < hi and lines[i].lstrip().startswith("{")


def _members(lines, opened, closed, name):
    def scan():
        # Between the line that opens the block and the one that closes it.
        return _blocks(lines, opened + 1, closed, f"{name}." if name else "") or []

    return scan


def _symbol(header):
    header = " ".join(header.split())
    if match := _GO_FUNC.search(header):
        return match[1]
    if match := _RUST_IMPL.search(header):
        return f"{match[1]} for {match[2]}" if match[2] else match[1]
    if match := _KEYWORD_NAME.search(header):
        return match[1]
    if match := _BINDING.search(header):
        return match[1]
    for match in _CALL_NAME.finditer(header):
        if re.split(r"::|\.|->", match[1])[-1] not in _NOT_NAMES:
            return match[1]
    if match := _ASSIGNED.search(header):
        return match[1]
    return None


# Markdown: one section per heading.

_HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"\s*(```|~~~)")


def _markdown_spans(lines):
    starts, fenced = [], False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            starts.append((i + 1, match[1]))
    ends = [start - 1 for start, _ in starts[1:]] + [len(lines)]
    return [_Span(start, end, title) for (start, title), end in zip(starts, ends)]


# Languages whose definitions start at column 0 and end where the next column-0 line begins
# (including a closing `end`/`}` on its own line).

_INDENT_DEFS = {
    "python": re.compile(r"(?:async\s+def|def|class)\s+(\w+)"),
    "ruby": re.compile(r"(?:def|class|module)\s+([\w:.?!=]+)"),
    "elixir": re.compile(r"(?:defmodule|defprotocol|defimpl)\s+([\w.]+)"),
    "lua": re.compile(r"(?:local\s+)?function\s+([\w.:]+)"),
    "shell": re.compile(r"(?:function\s+([\w-]+)|([\w-]+)\s*\(\)\s*\{?)"),
    "sql": re.compile(
        r"(?i:(?:create|alter)\s+(?:or\s+replace\s+)?(?:unique\s+)?(?:table|view|materialized\s+view|function"
        r"|procedure|index|trigger|type|sequence)\s+(?:if\s+(?:not\s+)?exists\s+)?([\w.\"`]+))"
    ),
}
_CLOSER = re.compile(r"(?:end\b|[}\])]|fi\b|esac\b)")


def _indent_spans(lines, pattern):
    starts = [(i, match) for i, line in enumerate(lines) if (match := pattern.match(line))]
    spans = []
    for k, (i, match) in enumerate(starts):
        limit = starts[k + 1][0] if k + 1 < len(starts) else len(lines)
        end = i
        for j in range(i + 1, limit):
            line = lines[j]
            if line[:1] and not line[:1].isspace():
                if _CLOSER.match(line):
                    end = j
                break
            if line.strip():
                end = j
        symbol = next((group for group in match.groups() if group), None)
        spans.append(_Span(i + 1, end + 1, symbol.strip('"`') if symbol else None))
    return spans


# --- storage ------------------------------------------------------------------------------
#
# `project_dir/search-index` is a symlink to the current generation, a tantivy index directory
# `search-index.<hex>` beside it. A full build writes a new generation and swaps the link in one
# rename; the generation it replaced is removed by the build after (a search that opened it just
# before the swap still finds its files). An update commits to the current generation in place:
# tantivy publishes a commit atomically, deletions and additions together.

GENERATION_PREFIX = ".gen-"
WRITER_HEAP_BYTES = 64_000_000


def _schema():
    builder = tantivy.SchemaBuilder()
    # "chunk" | "file" (one per indexed file, so files without chunks count) | "meta" (one).
    builder.add_text_field("kind", tokenizer_name="raw")
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    # Our tokens (runner.knowledge.tokenize), only split on spaces; frequencies but no positions:
    # queries are single terms, and BM25 needs only how often each occurs.
    for field in ("symbol_tokens", "path_tokens", "body_tokens"):
        builder.add_text_field(field, tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("symbol", stored=True, tokenizer_name="raw")
    builder.add_unsigned_field("start_line", stored=True)
    builder.add_unsigned_field("end_line", stored=True)
    builder.add_bytes_field("text", stored=True)
    builder.add_text_field("commit", stored=True, tokenizer_name="raw")
    builder.add_text_field("version", stored=True, tokenizer_name="raw")
    return builder.build()


SCHEMA = _schema()
# How much each field's BM25 score counts: a chunk defining what was asked for outranks one that
# merely mentions it, and a file's name says something about all of its chunks.
FIELD_BOOSTS = {"symbol_tokens": 4.0, "path_tokens": 2.0, "body_tokens": 1.0}


def build(index_path, sources, *, commit=None, on_progress=None):
    """Index `sources` [(RepoFile, text)] into a new generation, then make it the index at
    `index_path` (a symlink) in one rename. `on_progress(done, total)` is called as files are
    indexed. Returns Stats."""
    link = Path(index_path)
    link.parent.mkdir(parents=True, exist_ok=True)
    sources = list(sources)
    generation = link.with_name(f"{link.name}{GENERATION_PREFIX}{uuid.uuid4().hex[:12]}")
    generation.mkdir()
    writer = None
    try:
        writer = tantivy.Index(SCHEMA, path=str(generation)).writer(WRITER_HEAP_BYTES, 2)
        _add(writer, sources, on_progress)
        writer.add_document(_meta(commit))
        writer.commit()
        writer.wait_merging_threads()
        writer = None
        stats = _stats(_open(generation))
        replaced = os.readlink(link) if link.is_symlink() else None
        swap = link.with_name(f"{generation.name}.link")
        os.symlink(generation.name, swap)
        os.replace(swap, link)
    except BaseException:
        if writer is not None:
            writer.rollback()  # stops its indexing threads before their directory goes
        shutil.rmtree(generation, ignore_errors=True)
        raise
    for old in link.parent.glob(f"{link.name}{GENERATION_PREFIX}*"):
        if old.name in (generation.name, replaced):
            continue
        if old.is_symlink():
            old.unlink()  # the swap link of a build that died
        else:
            shutil.rmtree(old, ignore_errors=True)
    return stats


def update(index_path, sources, paths, *, commit=None, on_progress=None):
    """Re-index `paths` in place, in one commit: each one's chunks are dropped, then those of
    `sources` [(RepoFile, text)] (the paths that still exist and qualify) are added.

    Raises IndexMissing when there is no index of this version to update.
    """
    index = _open(index_path)
    writer = index.writer(WRITER_HEAP_BYTES // 4, 1)
    try:
        wanted = set(paths)
        for path in sorted(wanted):
            writer.delete_documents_by_term("path", path)
        writer.delete_documents_by_term("kind", "meta")
        _add(writer, [(file, text) for file, text in sources if file.path in wanted], on_progress)
        writer.add_document(_meta(commit))
        writer.commit()
        writer.wait_merging_threads()
    except BaseException:
        writer.rollback()
        raise
    index.reload()
    return _stats(index)


def _add(writer, sources, on_progress):
    total = len(sources)
    for done, (file, text) in enumerate(sources, 1):
        path_tokens = document(file.path)
        chunks = chunk_file(file.path, file.language, text)
        for chunk in chunks:
            doc = tantivy.Document(kind="chunk", path=file.path, start_line=chunk.start_line, end_line=chunk.end_line)
            doc.add_text("symbol_tokens", document(chunk.symbol) if chunk.symbol else "")
            doc.add_text("path_tokens", path_tokens)
            doc.add_text("body_tokens", document(chunk.text))
            if chunk.symbol:
                doc.add_text("symbol", chunk.symbol)
            doc.add_bytes("text", chunk.text.encode("utf-8", "surrogatepass"))
            writer.add_document(doc)
        writer.add_document(tantivy.Document(kind="file", path=file.path))
        if on_progress and (done % 250 == 0 or done == total):
            on_progress(done, total)


def _meta(commit):
    doc = tantivy.Document(kind="meta", version=SCHEMA_VERSION)
    if commit:
        doc.add_text("commit", commit)
    return doc


def _open(index_path):
    """The tantivy index at `index_path`, of this version; IndexMissing otherwise."""
    # The generation the link names now: a swap while this index is open must not mix two.
    index_path = Path(index_path).resolve()
    if not index_path.is_dir():
        raise IndexMissing(f"no index at {index_path}")
    try:
        index = tantivy.Index.open(str(index_path))
        meta = _meta_doc(index.searcher())
    except (ValueError, OSError) as exc:
        raise IndexMissing(f"unreadable index at {index_path}: {exc}") from None
    if meta is None or meta.get_first("version") != SCHEMA_VERSION:
        raise IndexMissing(f"index at {index_path} has another format")
    return index


def _meta_doc(searcher):
    found = searcher.search(tantivy.Query.term_query(SCHEMA, "kind", "meta"), 1, count=False).hits
    return searcher.doc(found[0][1]) if found else None


def _count(searcher, kind):
    return searcher.search(tantivy.Query.term_query(SCHEMA, "kind", kind), 1, count=True).count


def _stats(index):
    searcher = index.searcher()
    meta = _meta_doc(searcher)
    return Stats(
        files=_count(searcher, "file"),
        chunks=_count(searcher, "chunk"),
        commit=meta.get_first("commit") if meta is not None else None,
    )


def stats(index_path):
    """Stats of the index at `index_path` (IndexMissing when there is none)."""
    return _stats(_open(index_path))


# --- search -------------------------------------------------------------------------------


def search(index_path, query, limit=10):
    """The best `limit` chunks for `query`, best first (IndexMissing when there is no index).

    The query is never parsed as query syntax: it is cut into tokens like the documents, and each
    token is one term, so quotes, `*`, AND, NEAR or parentheses in it are plain text.
    """
    searcher = _open(index_path).searcher()
    try:
        return _search(searcher, query_terms(query), limit)
    except (ValueError, OSError) as exc:  # its files went while we read (removed by hand, disk)
        raise IndexMissing(f"unreadable index at {index_path}: {exc}") from None


def _search(searcher, terms, limit):
    terms = _useful_terms(searcher, terms)
    if not terms:
        return []
    clauses = []
    for term in terms:
        for field, boost in FIELD_BOOSTS.items():
            clause = tantivy.Query.term_query(SCHEMA, field, term, index_option="freq")
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(clause, boost) if boost != 1 else clause))
    wanted = set(terms)
    hits = []
    for score, address in searcher.search(tantivy.Query.boolean_query(clauses), limit, count=False).hits:
        doc = searcher.doc(address)
        text = doc.get_first("text").decode("utf-8", "surrogatepass")
        start_line = doc.get_first("start_line")
        snippet, snippet_start = _snippet(text, start_line, wanted)
        hits.append(
            Hit(
                path=doc.get_first("path"),
                start_line=start_line,
                end_line=doc.get_first("end_line"),
                symbol=doc.get_first("symbol"),
                score=score,
                snippet=snippet,
                snippet_start_line=snippet_start,
                text=text,
            )
        )
    return hits


def _useful_terms(searcher, terms):
    """The query's terms the index holds; of a long query, only the rarest (they rank, the
    others mostly cost time)."""
    counted = []
    for term in terms:
        frequencies = [searcher.doc_freq(field, term) for field in FIELD_BOOSTS]
        if any(frequencies):
            counted.append((max(frequencies), term))
    return [term for _, term in sorted(counted)[:MAX_QUERY_TERMS]]


def _snippet(text, start_line, terms):
    """The few lines of a chunk around the line holding most of the query's terms."""
    lines = text.split("\n")
    best, best_score = 0, 0
    for i, line in enumerate(lines):
        found = set()
        for word in re.findall(r"\w+", line):
            found.update(token for token in word_tokens(word) if token in terms)
        if len(found) > best_score:
            best, best_score = i, len(found)
    first = max(0, min(best - SNIPPET_LINES // 2, len(lines) - SNIPPET_LINES))
    return "\n".join(lines[first : first + SNIPPET_LINES]), start_line + first
