"""ARCHITECTURE_DIAGRAMS: Mermaid diagrams derived from the project map (folder-level module
dependency graph, `flowchart LR`) and the schema (ER diagram, `erDiagram`).

Mermaid is strict about identifiers and generous about quoted labels: every node id is made of
[A-Za-z0-9_] plus a short hash of what it stands for (so `a-b` and `a_b` stay apart, and no id is
a keyword such as `end`), and every label is quoted with `"` and `#` written as Mermaid entities.
"""
import hashlib
import posixpath
import re
from collections import Counter

from runner.knowledge import symbols as code_symbols

# A graph much larger than this is unreadable on a phone: folders are merged to a shallower depth.
MAX_NODES = 60
ROOT_LABEL = "(root)"


def _id(prefix, text):
    digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', text)[:40]}_{digest}"


def label(text):
    """A quoted Mermaid label."""
    text = text.replace("#", "#35;").replace('"', "#quot;").replace("`", "'").replace("\n", " ")
    return f'"{text}"'


def _folder(path, depth=None):
    folder = posixpath.dirname(path)
    if depth is not None and folder:
        folder = "/".join(folder.split("/")[:depth])
    return folder or "."


def _truncate(folder, depth):
    return folder if folder == "." else "/".join(folder.split("/")[:depth])


def module_graph(rows, max_nodes=MAX_NODES):
    """(mermaid text, {"nodes", "edges", "depth"}) of the folders holding code and the resolved
    imports between them; edge labels count the imports."""
    files = {row["path"] for row in rows}
    folders, pairs = set(), Counter()
    for row in rows:
        if row["language"] not in code_symbols.LANGUAGES:
            continue
        source = _folder(row["path"])
        folders.add(source)
        for entry in row["imports"]:
            target = entry["path"]
            if target is None:
                continue
            # A Go import resolves to its package's folder; the others to a file.
            target_folder = _folder(target) if target in files else target
            folders.add(target_folder)
            pairs[(source, target_folder)] += 1
    depth = full_depth = max((len(f.split("/")) for f in folders if f != "."), default=1)
    while True:
        nodes = {_truncate(f, depth) for f in folders}
        if len(nodes) <= max_nodes or depth == 1:
            break
        depth -= 1
    edges = Counter()
    for (source, target), count in pairs.items():
        a, b = _truncate(source, depth), _truncate(target, depth)
        if a != b:
            edges[(a, b)] += count
    lines = ["flowchart LR"]
    for node in sorted(nodes):
        lines.append(f"  {_id('m', node)}[{label(ROOT_LABEL if node == '.' else node)}]")
    for (a, b), count in sorted(edges.items()):
        lines.append(f"  {_id('m', a)} -->|{count}| {_id('m', b)}")
    if not nodes:
        lines.append(f"  {_id('m', 'none')}[{label('No source files in a language the map reads')}]")
    return "\n".join(lines) + "\n", {"nodes": len(nodes), "edges": len(edges), "depth": depth, "merged": depth < full_depth}


def _type(text):
    """A column type as an ER attribute type token: letters, digits, _ ( ) [ ]."""
    cleaned = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_()\[\]]", "_", text or "")).strip("_")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "t_" + cleaned if cleaned else "unknown"
    return cleaned


def _attribute(name):
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else "c_" + cleaned


def er_diagram(schema):
    """Mermaid `erDiagram` text of the schema's tables, columns (PK/FK/UK marked) and relations."""
    lines = ["erDiagram"]
    defined = {table["name"] for table in schema["tables"]}
    for table in schema["tables"]:
        keyed = {column for key in table["foreign_keys"] for column in key["columns"]}
        lines.append(f"  {_id('t', table['name'])}[{label(table['name'])}] {{")
        for column in table["columns"]:
            keys = [k for k, on in (("PK", column["name"] in table["primary_key"]), ("FK", column["name"] in keyed),
                                    ("UK", column["unique"])) if on]
            name = _attribute(column["name"])
            notes = [column["name"]] if name != column["name"] else []
            if column["nullable"]:
                notes.append("nullable")
            comment = " " + label("; ".join(notes)) if notes else ""
            lines.append(f"    {_type(column['type'])} {name}{' ' + ', '.join(keys) if keys else ''}{comment}")
        lines.append("  }")
    for missing in sorted({r["to_table"] for r in schema["relations"]} - defined):
        lines.append(f"  {_id('t', missing)}[{label(missing)}]")
    nullable = {
        (table["name"], column["name"]) for table in schema["tables"] for column in table["columns"] if column["nullable"]
    }
    for relation in schema["relations"]:
        optional = any((relation["from_table"], column) in nullable for column in relation["from_columns"])
        parent = "|o" if optional else "||"
        child = "o|" if relation["kind"] == "one-to-one" else "o{"
        lines.append(
            f"  {_id('t', relation['to_table'])} {parent}--{child} {_id('t', relation['from_table'])} : "
            f"{label(', '.join(relation['from_columns']))}"
        )
    return "\n".join(lines) + "\n"


def diagrams(rows, schema):
    """[{"name", "title", "description", "mermaid"}]: the module graph, and the ER diagram when the
    schema has tables."""
    graph, stats = module_graph(rows)
    merged = f" Folders are merged to depth {stats['depth']} to keep the graph readable." if stats["merged"] else ""
    found = [
        {
            "name": "modules",
            "title": "Module dependencies",
            "description": "Folders holding code and the imports between them (edge labels: number of "
            "imports), from the project map." + merged,
            "mermaid": graph,
        }
    ]
    if schema["tables"]:
        found.append(
            {
                "name": "schema",
                "title": "Database schema",
                "description": "Tables, their columns and foreign keys, from "
                + ", ".join(f"`{s['path']}`" for s in schema["sources"][:5])
                + (f" and {len(schema['sources']) - 5} more files" if len(schema["sources"]) > 5 else "")
                + ".",
                "mermaid": er_diagram(schema),
            }
        )
    return found


def markdown(rows, schema):
    """The ARCHITECTURE_DIAGRAMS markdown: each diagram under its heading in a ```mermaid block."""
    parts = []
    for diagram in diagrams(rows, schema):
        parts.append(f"## {diagram['title']}\n\n{diagram['description']}\n\n```mermaid\n{diagram['mermaid']}```\n")
    if not schema["tables"]:
        parts.append(f"## Database schema\n\nNo ER diagram: {schema['reason']}\n")
    return "\n".join(parts)
