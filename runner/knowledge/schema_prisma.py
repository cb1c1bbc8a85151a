"""Schema from Prisma schema files (`schema.prisma`, or several `.prisma` files of one schema):
`model X { field Type? @id @default(...) @map("col") @relation(fields: [...], references: [...]) }`
with `@@map`, `@@id` and `@@unique`. Relation fields (whose type is another model) are not columns;
the `@relation(fields, references)` side becomes the foreign key.
"""
import re

from runner.knowledge.schema import Tables

_BLOCK = re.compile(r"^[ \t]*(model|enum|view|type)\s+(\w+)\s*\{", re.MULTILINE)
_FIELD = re.compile(r"^(\w+)\s+(Unsupported\(\s*\"[^\"]*\"\s*\)|\w+(?:\.\w+)?)(\[\])?(\?)?\s*(.*)$")
_ATTRIBUTE = re.compile(r"@(\w+(?:\.\w+)?)")
_ON_DELETE = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
              "SetDefault": "SET DEFAULT"}


def read(files, texts):
    models, used = {}, []
    for file in (f for f in files if f.language == "prisma"):
        found = False
        for kind, name, body in _blocks(_strip_comments(texts(file.path))):
            if kind == "model":
                models[name] = _model(name, body, file.path)
                found = True
        if found:
            used.append(file.path)
    tables = Tables()
    for model in models.values():
        _table(tables, model, models)
    return tables.tables, used


def _strip_comments(text):
    lines = []
    for line in text.splitlines():
        out, in_string, i = [], False, 0
        while i < len(line):
            char = line[i]
            if char == "\\" and in_string:
                out.append(line[i : i + 2])
                i += 2
                continue
            if char == '"':
                in_string = not in_string
            elif not in_string and line.startswith("//", i):
                break
            out.append(char)
            i += 1
        lines.append("".join(out))
    return "\n".join(lines)


def _blocks(text):
    for match in _BLOCK.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            if text[i] == '"':
                i = text.find('"', i + 1) + 1 or len(text)
                continue
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield match[1], match[2], text[match.end() : i - 1]


def _attributes(text):
    """[(name, argument text or None)] of `@a @b(...)` / `@@a(...)` in order."""
    found, i = [], 0
    while True:
        match = _ATTRIBUTE.search(text, i)
        if not match:
            return found
        i = match.end()
        argument = None
        if i < len(text) and text[i] == "(":
            depth, j = 0, i
            while j < len(text):
                if text[j] == '"':
                    j = text.find('"', j + 1) + 1 or len(text)
                    continue
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            argument, i = text[i + 1 : j - 1], j
        found.append((match[1], argument))


def _named(argument, name):
    """The value of `name: ...` in an attribute's arguments (a list as [items])."""
    if argument is None:
        return None
    match = re.search(rf"\b{name}\s*:\s*(\[[^\]]*\]|\"[^\"]*\"|\w+)", argument)
    if not match:
        return None
    value = match[1]
    if value.startswith("["):
        return [item.strip() for item in value[1:-1].split(",") if item.strip()]
    return value.strip('"')


def _first(argument):
    """The unnamed first argument: `"users"`, `[a, b]` or `fields: [a, b]` (the name is optional)."""
    if argument is None:
        return None
    argument = re.sub(r"^\s*\w+\s*:\s*", "", argument.strip())
    if argument.startswith("["):
        return [item.strip() for item in argument[1 : argument.index("]")].split(",") if item.strip()]
    match = re.match(r'"([^"]*)"', argument)
    return match[1] if match else argument


def _model(name, body, path):
    model = {"name": name, "table": name, "path": path, "fields": [], "id": None, "unique": []}
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@@"):
            for attribute, argument in _attributes(line[1:]):
                if attribute == "map":
                    model["table"] = _first(argument)
                elif attribute == "id":
                    model["id"] = _first(argument)
                elif attribute == "unique":
                    model["unique"].append(_first(argument))
            continue
        match = _FIELD.match(line)
        if not match:
            continue
        attributes = _attributes(match[5])
        model["fields"].append(
            {
                "name": match[1],
                "type": match[2] + (match[3] or ""),
                "base": match[2],
                "list": bool(match[3]),
                "optional": bool(match[4]),
                "attributes": dict(attributes),
            }
        )
    return model


def _column_name(field):
    mapped = field["attributes"].get("map")
    return _first(mapped) if mapped else field["name"]


def _table(tables, model, models):
    table = tables.create(model["table"], model["path"])
    columns = {}
    for field in model["fields"]:
        if field["base"] in models:
            continue  # a relation field, not a column
        attributes = field["attributes"]
        name = _column_name(field)
        columns[field["name"]] = name
        tables.add_column(
            table,
            name,
            field["type"],
            nullable=field["optional"],
            default=attributes.get("default"),
            unique="unique" in attributes,
            primary_key="id" in attributes,
        )
    if model["id"]:
        tables.set_primary_key(table, [columns.get(field, field) for field in model["id"]])
    for fields in model["unique"]:
        if isinstance(fields, list) and len(fields) == 1 and (column := tables.column(table, columns.get(fields[0], fields[0]))):
            column["unique"] = True
    for field in model["fields"]:
        target = models.get(field["base"])
        relation = field["attributes"].get("relation")
        fields = _named(relation, "fields")
        references = _named(relation, "references")
        if target is None or not fields or not references:
            continue
        target_columns = {f["name"]: _column_name(f) for f in target["fields"]}
        on_delete = _named(relation, "onDelete")
        tables.add_foreign_key(
            table,
            [columns.get(name, name) for name in fields],
            target["table"],
            [target_columns.get(name, name) for name in references],
            on_delete=_ON_DELETE.get(on_delete, on_delete),
            name=_named(relation, "map") or _named(relation, "name"),
        )
