"""Schema from SQL migrations: CREATE TABLE, ALTER TABLE and DROP TABLE in `.sql` files, applied in
migration order (file names compared the way migration tools do, so V2 comes before V10).

sqlglot parses the statements (PostgreSQL, MySQL, SQLite and SQL Server spellings); statements it
cannot read are skipped, never fatal. Down migrations — `*.down.sql`, Flyway `U<n>__` undo files and
the down halves of dbmate (`-- migrate:down`) and goose (`-- +goose Down`) files — are not applied.
"""
import logging
import re
from pathlib import PurePosixPath

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from runner.knowledge.schema import Tables, natural_key

DIALECTS = ("postgres", "mysql", "sqlite", "tsql")
_MENTIONS_TABLE = re.compile(r"\b(create|alter|drop|rename)\s+(?:\w+\s+){0,3}?table\b", re.IGNORECASE)
_DOWN_FILE = re.compile(r"(^|[._-])down\.sql$|^U\d+(_\d+)*__", re.IGNORECASE)
_UP_MARK = re.compile(r"^\s*--\s*(migrate:up|\+goose\s+up)\b", re.IGNORECASE)
_DOWN_MARK = re.compile(r"^\s*--\s*(migrate:down|\+goose\s+down)\b", re.IGNORECASE)
# Schemas every database puts tables in by default: `public.users` is just `users`.
_DEFAULT_SCHEMAS = {"public", "dbo", "main"}
_SERIAL = {exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL}


def read(files, texts):
    """(tables by name, paths used) from the repository's SQL migration files."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to a Command" is noise here
    tables, used = Tables(), []
    for file in sorted((f for f in files if f.language == "sql"), key=lambda f: natural_key(f.path)):
        if _DOWN_FILE.search(PurePosixPath(file.path).name):
            continue
        text = up_sections(texts(file.path))
        if not _MENTIONS_TABLE.search(text):
            continue
        applied = False
        for statement, dialect in statements(text):
            applied |= _apply(tables, statement, dialect, file.path)
        if applied:
            used.append(file.path)
    return tables.tables, used


def up_sections(text):
    """The text without the down sections of dbmate/goose migrations (everything when unmarked)."""
    if not _DOWN_MARK.search(text) and not any(_UP_MARK.match(line) for line in text.splitlines()):
        return text
    kept, keep = [], True
    for line in text.splitlines(keepends=True):
        if _UP_MARK.match(line):
            keep = True
        elif _DOWN_MARK.match(line):
            keep = False
        if keep:
            kept.append(line)
    return "".join(kept)


def statements(text):
    """[(expression, dialect)] of the statements sqlglot can read, in order; when no dialect reads
    the whole file, statement by statement, skipping the unreadable ones."""
    whole = _best_parse(text)
    if whole is not None:
        return [(statement, whole[1]) for statement in whole[0]]
    found = []
    for chunk in _split(text):
        parsed = _best_parse(chunk)
        if parsed is not None:
            found.extend((statement, parsed[1]) for statement in parsed[0])
    return found


def _best_parse(text):
    """(statements, dialect) from the first dialect that reads `text` best, or None. A dialect that
    does not know some syntax (MySQL's backticks under PostgreSQL) still "parses" it, as an opaque
    Command: fewer of those is better."""
    best = None
    for dialect in DIALECTS:
        try:
            parsed = [statement for statement in sqlglot.parse(text, read=dialect) if statement is not None]
        except SqlglotError:
            continue
        opaque = sum(isinstance(statement, exp.Command) for statement in parsed)
        if best is None or opaque < best[0]:
            best = (opaque, parsed, dialect)
        if opaque == 0:
            break
    return None if best is None else (best[1], best[2])


def _split(text):
    """Statements split at the semicolons the tokenizer sees (not those in strings or comments)."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(text)
    except SqlglotError:
        return [part for part in text.split(";") if part.strip()]
    chunks, start = [], 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            chunks.append(text[start : token.end])
            start = token.end + 1
    chunks.append(text[start:])
    return [chunk for chunk in chunks if chunk.strip()]


def table_name(table):
    """`users`, or `audit.users` for a table in a schema other than the default one."""
    name = table.name
    if table.db and table.db.lower() not in _DEFAULT_SCHEMAS:
        return f"{table.db}.{name}"
    return name


def _apply(tables, statement, dialect, path):
    """Apply one statement; True when it changed a table."""
    if isinstance(statement, exp.Create) and (statement.args.get("kind") or "").upper() == "TABLE":
        target = statement.this
        if isinstance(target, exp.Schema):
            table = tables.create(table_name(target.this), path)
            for item in target.expressions:
                if isinstance(item, exp.ColumnDef):
                    _add_column(tables, table, item, dialect)
                else:
                    _add_constraint(tables, table, item)
        elif isinstance(target, exp.Table):
            tables.create(table_name(target), path)  # CREATE TABLE … AS / LIKE: columns unknown here
        return True
    if isinstance(statement, exp.Alter) and (statement.args.get("kind") or "").upper() == "TABLE":
        table = tables.get(table_name(statement.this))
        if table is None:
            return False
        for action in statement.args.get("actions") or []:
            _alter(tables, table, action, dialect)
            table = tables.get(table["name"]) or table
        return True
    if isinstance(statement, exp.Drop) and (statement.args.get("kind") or "").upper() == "TABLE":
        dropped = False
        for target in statement.args.get("tables") or [statement.this]:
            if isinstance(target, exp.Table) and tables.get(table_name(target)) is not None:
                tables.drop(table_name(target))
                dropped = True
        return dropped
    return False


def _names(items):
    names = []
    for item in items or []:
        while isinstance(item, exp.Ordered):
            item = item.this
        names.append(item.name)
    return names


def _add_column(tables, table, definition, dialect):
    kind = definition.args.get("kind")
    nullable, default, unique, primary = True, None, False, False
    if isinstance(kind, exp.DataType) and kind.this in _SERIAL:
        nullable = False
    for constraint in definition.args.get("constraints") or []:
        spec = constraint.args.get("kind")
        if isinstance(spec, exp.NotNullColumnConstraint):
            nullable = bool(spec.args.get("allow_null"))
        elif isinstance(spec, exp.PrimaryKeyColumnConstraint):
            primary = True
        elif isinstance(spec, exp.DefaultColumnConstraint):
            default = spec.this.sql(dialect=dialect)
        elif isinstance(spec, exp.UniqueColumnConstraint):
            unique = True
    name = definition.name
    tables.add_column(
        table,
        name,
        kind.sql(dialect=dialect) if kind is not None else "",
        nullable=nullable,
        default=default,
        unique=unique,
        primary_key=primary,
    )
    for constraint in definition.args.get("constraints") or []:
        spec = constraint.args.get("kind")
        if isinstance(spec, exp.Reference):
            _add_reference(tables, table, [name], spec, constraint.name or None)


def _add_reference(tables, table, columns, reference, name):
    target = reference.this
    if isinstance(target, exp.Schema):
        references_table, references_columns = table_name(target.this), _names(target.expressions)
    else:
        references_table, references_columns = table_name(target), []
    on_delete = None
    for option in reference.args.get("options") or []:
        text = option if isinstance(option, str) else option.sql()
        match = re.match(r"ON DELETE (.+)$", text.strip(), re.IGNORECASE)
        if match:
            on_delete = match[1].upper()
    tables.add_foreign_key(table, columns, references_table, references_columns, on_delete=on_delete, name=name)


def _add_constraint(tables, table, item, name=None):
    if isinstance(item, exp.Constraint):
        for inner in item.expressions:
            _add_constraint(tables, table, inner, item.name)
    elif isinstance(item, exp.PrimaryKey):
        tables.set_primary_key(table, _names(item.expressions))
    elif isinstance(item, exp.ForeignKey):
        reference = item.args.get("reference")
        if reference is not None:
            _add_reference(tables, table, _names(item.expressions), reference, name)
    elif isinstance(item, exp.UniqueColumnConstraint):
        target = item.this
        columns = _names(target.expressions) if isinstance(target, exp.Schema) else []
        if len(columns) == 1 and (column := tables.column(table, columns[0])) is not None:
            column["unique"] = True


def _alter(tables, table, action, dialect):
    if isinstance(action, exp.ColumnDef):
        _add_column(tables, table, action, dialect)
    elif isinstance(action, exp.Drop):
        kind = (action.args.get("kind") or "").upper()
        targets = action.args.get("tables") or []
        if kind == "COLUMN":
            for column in targets:
                tables.drop_column(table, column.name)
        elif kind == "CONSTRAINT":
            for constraint in targets:
                tables.drop_foreign_key(table, name=constraint.name)
    elif isinstance(action, exp.RenameColumn):
        tables.rename_column(table, action.this.name, action.args["to"].name)
    elif isinstance(action, exp.AlterRename):
        tables.rename(table["name"], table_name(action.this))
    elif isinstance(action, exp.AddConstraint):
        for item in action.expressions:
            _add_constraint(tables, table, item)
    elif isinstance(action, exp.AlterColumn):
        column = tables.column(table, action.name)
        if column is None:
            return
        if action.args.get("dtype") is not None:
            column["type"] = action.args["dtype"].sql(dialect=dialect)
        if action.args.get("default") is not None:
            column["default"] = action.args["default"].sql(dialect=dialect)
        elif action.args.get("drop") and action.args.get("allow_null") is None:
            column["default"] = None  # DROP DEFAULT
        if action.args.get("allow_null") is not None:
            column["nullable"] = bool(action.args["allow_null"])
