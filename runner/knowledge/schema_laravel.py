"""Schema from Laravel migrations: the `up()` method's `Schema::create` / `Schema::table` blueprints
(`$table->string('name', 100)->nullable()->default('x')`, `foreignId(...)->constrained()`,
`timestamps()`, `dropColumn`, `renameColumn`, …) and `Schema::rename` / `drop` / `dropIfExists`,
applied in migration order (by file name, as `php artisan migrate` runs them).

Types are Laravel's column methods as written (`string(100)`, `foreignId`, `timestamp`); columns are
NOT NULL unless `->nullable()`, as in Laravel.
"""
import re
from pathlib import PurePosixPath

from runner.knowledge.schema import Tables, natural_key

_SCHEMA_CALL = re.compile(r"Schema\s*::\s*(?:connection\s*\([^)]*\)\s*->\s*)?(create|table|drop|dropIfExists|rename)\s*\(")
_CLOSURE = re.compile(r"(?:function|fn)\s*\(\s*(?:[\\\w]+\s+)?\$(\w+)\s*\)")
_INCREMENTS = {"id", "increments", "bigIncrements", "mediumIncrements", "smallIncrements", "tinyIncrements"}
# Blueprint methods that are not "add one column named by the first argument".
_TABLE_METHODS = {
    "primary", "unique", "index", "fullText", "spatialIndex", "rawIndex", "foreign", "engine", "charset",
    "collation", "comment", "temporary", "renameIndex", "dropIndex", "dropUnique", "dropFullText",
    "dropSpatialIndex", "dropColumn", "dropColumns", "renameColumn", "dropForeign", "dropPrimary",
    "dropTimestamps", "dropTimestampsTz", "dropSoftDeletes", "dropSoftDeletesTz", "dropRememberToken",
    "dropMorphs", "dropConstrainedForeignId", "dropForeignIdFor", "timestamps", "timestampsTz",
    "nullableTimestamps", "softDeletes", "softDeletesTz", "rememberToken", "morphs", "nullableMorphs",
    "uuidMorphs", "nullableUuidMorphs", "ulidMorphs", "nullableUlidMorphs", "foreignIdFor",
}
_ON_DELETE = {"cascadeOnDelete": "CASCADE", "nullOnDelete": "SET NULL", "restrictOnDelete": "RESTRICT",
              "noActionOnDelete": "NO ACTION"}
_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
              "goose": "geese", "tooth": "teeth", "foot": "feet", "ox": "oxen", "datum": "data"}


class PhpClass:
    """A `Foo::class` argument."""

    def __init__(self, name):
        self.name = name.rpartition("\\")[2]


def read(files, texts):
    tables, used = Tables(), []
    candidates = [f for f in files if f.language == "php"]
    for file in sorted(candidates, key=lambda f: (natural_key(PurePosixPath(f.path).name), f.path)):
        text = texts(file.path)
        if "Schema" not in text:
            continue
        if _apply_file(tables, strip_comments(text), file.path):
            used.append(file.path)
    return tables.tables, used


def strip_comments(text):
    """PHP source with comments blanked out (strings kept), so nothing commented out is applied."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char in "'\"":
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i) or (char == "#" and not text.startswith("#[", i)):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _string_end(text, start):
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)


def _matching(text, start):
    """Index just past the bracket closing the one at `start` (strings skipped)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack, i = [], start
    while i < len(text):
        char = text[i]
        if char in "'\"":
            i = _string_end(text, i)
            continue
        if char in pairs:
            stack.append(pairs[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return len(text)


def _split_top(text, separator):
    """Split at `separator` where no bracket or string is open."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in "'\"":
            i = _string_end(text, i)
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _up_body(text):
    match = re.search(r"function\s+up\s*\([^)]*\)[^{]*\{", text)
    if not match:
        return text
    end = _matching(text, match.end() - 1)
    return text[match.end() : end - 1]


def literal(text):
    """A PHP argument as a Python value: str, int, float, bool, None, list, PhpClass; else its text."""
    text = text.strip()
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if text.startswith("[") and text.endswith("]"):
        return [literal(item) for item in _split_top(text[1:-1], ",")]
    if lowered.startswith("array(") and text.endswith(")"):
        return [literal(item) for item in _split_top(text[6:-1], ",")]
    match = re.fullmatch(r"\\?([\w\\]+)::class", text)
    if match:
        return PhpClass(match[1])
    return text


def _calls(statement, variable):
    """[(method, [args])] of a `$table->a(...)->b(...)` chain; None for any other statement."""
    match = re.match(rf"\${variable}\s*->", statement)
    if not match:
        return None
    calls, i = [], match.start() + len(variable) + 1
    while True:
        step = re.compile(r"\s*->\s*(\w+)\s*").match(statement, i)
        if not step:
            break
        name, i = step[1], step.end()
        args = []
        if i < len(statement) and statement[i] == "(":
            end = _matching(statement, i)
            args = [literal(a) for a in _split_top(statement[i + 1 : end - 1], ",")]
            i = end
        calls.append((name, args))
    return calls


def _apply_file(tables, text, path):
    body, changed = _up_body(text), False
    for match in _SCHEMA_CALL.finditer(body):
        verb = match[1]
        end = _matching(body, match.end() - 1)
        args = _split_top(body[match.end() : end - 1], ",")
        if not args:
            continue
        name = literal(args[0])
        if not isinstance(name, str):
            continue
        if verb in ("drop", "dropIfExists"):
            changed |= tables.get(name) is not None
            tables.drop(name)
        elif verb == "rename" and len(args) > 1 and isinstance(literal(args[1]), str):
            changed |= tables.get(name) is not None
            tables.rename(name, literal(args[1]))
        elif verb in ("create", "table") and len(args) > 1:
            table = tables.create(name, path) if verb == "create" else tables.get(name)
            if table is None:
                continue
            closure = ",".join(args[1:])
            head = _CLOSURE.search(closure)
            brace = closure.find("{")
            if not head or brace < 0:
                continue
            blueprint = closure[brace + 1 : _matching(closure, brace) - 1]
            for statement in _split_top(blueprint, ";"):
                calls = _calls(statement, head[1])
                if calls:
                    _blueprint(tables, table, calls)
            changed = True
    return changed


def snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def plural(word):
    """English plural as Laravel's inflector gives it for table names (the common rules)."""
    head, _, last = word.rpartition("_")
    prefix = head + "_" if head else ""
    if last in _IRREGULAR:
        return prefix + _IRREGULAR[last]
    if re.search(r"[^aeiou]y$", last):
        return prefix + last[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", last):
        return prefix + last + "es"
    return prefix + last + "s"


def _type(method, args):
    extra = [repr(a) if isinstance(a, str) else str(a) for a in args[1:] if not isinstance(a, (list, PhpClass))]
    values = next((a for a in args[1:] if isinstance(a, list)), None)
    if values is not None:
        extra = [", ".join(repr(v) for v in values)] + extra
    return f"{method}({', '.join(extra)})" if extra else method


def _blueprint(tables, table, calls):
    method, args = calls[0]
    modifiers = calls[1:]
    if method in _INCREMENTS:
        name = args[0] if args and isinstance(args[0], str) else "id"
        tables.add_column(table, name, method, nullable=False, primary_key=True)
        return
    if method in ("timestamps", "timestampsTz", "nullableTimestamps"):
        kind = "timestampTz" if method.endswith("Tz") else "timestamp"
        for name in ("created_at", "updated_at"):
            tables.add_column(table, name, kind, nullable=True)
        return
    if method in ("softDeletes", "softDeletesTz"):
        name = args[0] if args and isinstance(args[0], str) else "deleted_at"
        tables.add_column(table, name, "timestampTz" if method.endswith("Tz") else "timestamp", nullable=True)
        return
    if method == "rememberToken":
        tables.add_column(table, "remember_token", "string(100)", nullable=True)
        return
    if method.endswith("Morphs") or method == "morphs":
        if args and isinstance(args[0], str):
            nullable = method.startswith("nullable")
            id_type = "uuid" if "Uuid" in method else "ulid" if "Ulid" in method else "unsignedBigInteger"
            tables.add_column(table, f"{args[0]}_type", "string", nullable=nullable)
            tables.add_column(table, f"{args[0]}_id", id_type, nullable=nullable)
        return
    if method == "foreignIdFor":
        if not args or not isinstance(args[0], PhpClass):
            return
        name = args[1] if len(args) > 1 and isinstance(args[1], str) else f"{snake(args[0].name)}_id"
        _column(tables, table, name, f"foreignIdFor({args[0].name})", modifiers, plural(snake(args[0].name)))
        return
    if method in _TABLE_METHODS:
        _table_method(tables, table, method, args, modifiers)
        return
    if args and isinstance(args[0], str):
        _column(tables, table, args[0], _type(method, args), modifiers, None)


def _column(tables, table, name, type_, modifiers, default_target):
    nullable, default, unique, primary = False, None, False, False
    reference = {}
    for method, args in modifiers:
        if method == "nullable":
            nullable = args[0] is not False if args else True
        elif method == "default":
            default = _php_value(args[0]) if args else None
        elif method == "useCurrent":
            default = "CURRENT_TIMESTAMP"
        elif method == "unique":
            unique = True
        elif method == "primary":
            primary = True
        elif method == "constrained":
            target = args[0] if args and isinstance(args[0], str) else default_target or plural(name.removesuffix("_id"))
            column = args[1] if len(args) > 1 and isinstance(args[1], str) else "id"
            reference.update(table=target, column=column)
        elif method == "references" and args:
            reference["column"] = args[0] if isinstance(args[0], str) else "id"
        elif method == "on" and args:
            reference["table"] = args[0]
        elif method == "onDelete" and args and isinstance(args[0], str):
            reference["on_delete"] = args[0].upper()
        elif method in _ON_DELETE:
            reference["on_delete"] = _ON_DELETE[method]
    tables.add_column(table, name, type_, nullable=nullable, default=default, unique=unique, primary_key=primary)
    if "table" in reference:
        tables.add_foreign_key(
            table, [name], reference["table"], [reference.get("column", "id")],
            on_delete=reference.get("on_delete"), name=f"{table['name']}_{name}_foreign",
        )


def _php_value(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_php_value(v) for v in value) + "]"
    return str(value)


def _names(args):
    names = []
    for arg in args:
        if isinstance(arg, str):
            names.append(arg)
        elif isinstance(arg, list):
            names.extend(a for a in arg if isinstance(a, str))
    return names


def _table_method(tables, table, method, args, modifiers):
    if method == "primary":
        tables.set_primary_key(table, _names(args[:1]))
    elif method == "unique":
        names = _names(args[:1])
        if len(names) == 1 and (column := tables.column(table, names[0])) is not None:
            column["unique"] = True
    elif method == "foreign":
        columns = _names(args[:1])
        reference = {}
        for name, values in modifiers:
            if name == "references" and values:
                reference["columns"] = _names(values[:1])
            elif name == "on" and values:
                reference["table"] = values[0]
            elif name == "onDelete" and values and isinstance(values[0], str):
                reference["on_delete"] = values[0].upper()
            elif name in _ON_DELETE:
                reference["on_delete"] = _ON_DELETE[name]
        if columns and isinstance(reference.get("table"), str):
            key_name = args[1] if len(args) > 1 and isinstance(args[1], str) else f"{table['name']}_{'_'.join(columns)}_foreign"
            tables.add_foreign_key(
                table, columns, reference["table"], reference.get("columns", ["id"]),
                on_delete=reference.get("on_delete"), name=key_name,
            )
    elif method in ("dropColumn", "dropColumns"):
        for name in _names(args):
            tables.drop_column(table, name)
    elif method == "renameColumn" and len(args) > 1:
        tables.rename_column(table, args[0], args[1])
    elif method == "dropForeign" and args:
        if isinstance(args[0], list):
            tables.drop_foreign_key(table, columns=_names(args[:1]))
        elif isinstance(args[0], str):
            tables.drop_foreign_key(table, name=args[0])
    elif method == "dropPrimary":
        table["primary_key"] = []
    elif method in ("dropTimestamps", "dropTimestampsTz"):
        for name in ("created_at", "updated_at"):
            tables.drop_column(table, name)
    elif method in ("dropSoftDeletes", "dropSoftDeletesTz"):
        tables.drop_column(table, args[0] if args and isinstance(args[0], str) else "deleted_at")
    elif method == "dropRememberToken":
        tables.drop_column(table, "remember_token")
    elif method == "dropMorphs" and args and isinstance(args[0], str):
        for suffix in ("_type", "_id"):
            tables.drop_column(table, args[0] + suffix)
    elif method == "dropConstrainedForeignId" and args and isinstance(args[0], str):
        tables.drop_column(table, args[0])
    elif method == "dropForeignIdFor" and args and isinstance(args[0], PhpClass):
        tables.drop_foreign_key(table, columns=[f"{snake(args[0].name)}_id"])
