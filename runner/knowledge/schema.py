"""The database schema of a repository, read from its own sources — SQL migrations, SQLAlchemy and
Django models, Laravel migrations, a Prisma schema — never guessed from names.

`build_schema(repo_dir)` → {"tables", "relations", "sources", "reason"}:
- tables: [{"name", "columns": [{"name", "type", "nullable", "default", "unique"}], "primary_key":
  [column names], "foreign_keys": [{"name", "columns", "references_table", "references_columns",
  "on_delete"}], "source": path of the file that created it}], sorted by name. `type` is the type as
  the source writes it (`VARCHAR(255)`, `String(254)`, `CharField(max_length=100)`, `string`, `Int`).
- relations: one per foreign key, {"from_table", "from_columns", "to_table", "to_columns", "kind":
  "many-to-one" | "one-to-one"} (one-to-one when the referencing columns are unique or the key).
- sources: [{"path", "kind"}] of the files that contributed, in the order they were applied.
- reason: None, or why the schema is empty (no source this reader knows was found).

Each kind of source is applied in its own order (migrations by file name, so ALTER TABLE follows
the CREATE TABLE it changes); when two kinds define the same table, the first kind in KINDS wins.
"""
import re

from runner.knowledge import files as repo_files

KINDS = ("sql", "laravel", "prisma", "sqlalchemy", "django")


def natural_key(path):
    """Sort key in which `V2__x.sql` comes before `V10__x.sql`, as a migration tool orders them."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", path)]


class Tables:
    """The tables one kind of source defines, changed statement by statement in source order."""

    def __init__(self):
        self.tables = {}

    def create(self, name, source):
        table = {"name": name, "columns": [], "primary_key": [], "foreign_keys": [], "source": source}
        self.tables[name] = table
        return table

    def get(self, name):
        return self.tables.get(name)

    def drop(self, name):
        self.tables.pop(name, None)

    def rename(self, old, new):
        table = self.tables.pop(old, None)
        if table is None:
            return
        table["name"] = new
        self.tables[new] = table
        for other in self.tables.values():
            for key in other["foreign_keys"]:
                if key["references_table"] == old:
                    key["references_table"] = new

    @staticmethod
    def column(table, name):
        return next((column for column in table["columns"] if column["name"] == name), None)

    def add_column(self, table, name, type_, *, nullable=True, default=None, unique=False, primary_key=False):
        column = {"name": name, "type": type_, "nullable": nullable, "default": default, "unique": unique}
        existing = self.column(table, name)
        if existing is not None:
            table["columns"][table["columns"].index(existing)] = column
        else:
            table["columns"].append(column)
        if primary_key:
            self.set_primary_key(table, [*table["primary_key"], name] if table["primary_key"] else [name])
        return column

    def set_primary_key(self, table, names):
        table["primary_key"] = list(dict.fromkeys(names))
        for column in table["columns"]:
            if column["name"] in table["primary_key"]:
                column["nullable"] = False

    def drop_column(self, table, name):
        table["columns"] = [column for column in table["columns"] if column["name"] != name]
        table["primary_key"] = [column for column in table["primary_key"] if column != name]
        table["foreign_keys"] = [key for key in table["foreign_keys"] if name not in key["columns"]]

    def rename_column(self, table, old, new):
        column = self.column(table, old)
        if column is None:
            return
        column["name"] = new
        table["primary_key"] = [new if name == old else name for name in table["primary_key"]]
        for key in table["foreign_keys"]:
            key["columns"] = [new if name == old else name for name in key["columns"]]
        for other in self.tables.values():
            for key in other["foreign_keys"]:
                if key["references_table"] == table["name"]:
                    key["references_columns"] = [new if name == old else name for name in key["references_columns"]]

    @staticmethod
    def add_foreign_key(table, columns, references_table, references_columns, *, on_delete=None, name=None):
        key = {
            "name": name,
            "columns": list(columns),
            "references_table": references_table,
            "references_columns": list(references_columns),
            "on_delete": on_delete,
        }
        table["foreign_keys"] = [k for k in table["foreign_keys"] if k["columns"] != key["columns"]] + [key]
        return key

    @staticmethod
    def drop_foreign_key(table, *, name=None, columns=None):
        table["foreign_keys"] = [
            key
            for key in table["foreign_keys"]
            if not ((name is not None and key["name"] == name) or (columns is not None and key["columns"] == list(columns)))
        ]


def build_schema(repo_dir, files=None):
    """The schema read from the repository at `repo_dir` (see the module docstring).

    `files`: the repository's RepoFile list when the caller already has it.
    """
    from runner.knowledge import schema_laravel, schema_prisma, schema_python, schema_sql

    if files is None:
        files = repo_files.repository_files(repo_dir)
    readers = {
        "sql": schema_sql.read,
        "laravel": schema_laravel.read,
        "prisma": schema_prisma.read,
        "sqlalchemy": schema_python.read_sqlalchemy,
        "django": schema_python.read_django,
    }
    texts = _Texts(repo_dir)
    python = schema_python.PythonSources(files, texts)
    tables, sources = {}, []
    for kind in KINDS:
        reader = readers[kind]
        found, used = reader(python) if kind in ("sqlalchemy", "django") else reader(files, texts)
        for name, table in found.items():
            tables.setdefault(name, table)
        sources.extend({"path": path, "kind": kind} for path in used)
    ordered = [tables[name] for name in sorted(tables)]
    for table in ordered:
        for key in table["foreign_keys"]:
            # `REFERENCES users` with no column list means the referenced table's primary key.
            if not key["references_columns"] and key["references_table"] in tables:
                key["references_columns"] = list(tables[key["references_table"]]["primary_key"])
            # `Column("book_id", ForeignKey("books.id"))`: the type is the referenced column's.
            target = tables.get(key["references_table"])
            for column_name, referenced in zip(key["columns"], key["references_columns"]):
                column = Tables.column(table, column_name)
                source = Tables.column(target, referenced) if target else None
                if column is not None and not column["type"] and source is not None:
                    column["type"] = source["type"]
    reason = None
    if not ordered:
        reason = (
            "No schema source was found: looked for SQL migrations (CREATE TABLE in .sql files), "
            "SQLAlchemy models, Django models, Laravel migrations (Schema::create) and a Prisma schema."
            if not sources
            else "The schema sources found define no tables."
        )
    return {"tables": ordered, "relations": relations(ordered), "sources": sources, "reason": reason}


def relations(tables):
    """One relation per foreign key; one-to-one when the referencing columns are unique on their own."""
    found = []
    for table in tables:
        unique_sets = [table["primary_key"]] + [[c["name"]] for c in table["columns"] if c["unique"]]
        for key in table["foreign_keys"]:
            one = any(sorted(key["columns"]) == sorted(u) for u in unique_sets if u)
            found.append(
                {
                    "from_table": table["name"],
                    "from_columns": key["columns"],
                    "to_table": key["references_table"],
                    "to_columns": key["references_columns"],
                    "kind": "one-to-one" if one else "many-to-one",
                }
            )
    return found


class _Texts:
    """File text by path, read once."""

    def __init__(self, repo_dir):
        self.repo_dir, self.cache = repo_dir, {}

    def __call__(self, path):
        if path not in self.cache:
            try:
                self.cache[path] = repo_files.read_text(self.repo_dir, path)
            except OSError:
                self.cache[path] = ""  # removed (or made unreadable) since it was listed
        return self.cache[path]


def project_schema(project_id):
    """(schema, head commit, tree state) of the project's checkout, read once per tree state."""
    from runner.knowledge import cache, docs

    return cache.cached(project_id, "schema", build_schema, ignore=docs.MANAGED_PATHS)
