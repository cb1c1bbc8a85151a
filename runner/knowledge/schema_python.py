"""Schema from Python models, read with `ast` (never imported or run): SQLAlchemy declarative classes
(`__tablename__` with `Column` / `mapped_column` / `Mapped[...]`, mixins, `__table_args__`) and core
`Table(...)` objects; Django `models.Model` subclasses (fields, `Meta.db_table`, abstract bases,
multi-table inheritance, ForeignKey / OneToOneField / ManyToManyField).
"""
import ast
import re
from pathlib import PurePosixPath

from runner.knowledge.schema import Tables

# Files worth parsing: the others cannot define a model or a table.
_HINTS = ("__tablename__", "mapped_column", "Column(", "Table(", "django", "DEFAULT_AUTO_FIELD")
# Module qualifiers dropped from written types: `sa.String(254)` is `String(254)`.
_QUALIFIERS = re.compile(r"\b(?:sa|db|sqlalchemy|sqltypes|types|orm)\.")
# SQLAlchemy 2's default map from a `Mapped[...]` Python type to a column type.
_ANNOTATION_TYPES = {
    "int": "Integer",
    "str": "String",
    "bool": "Boolean",
    "float": "Float",
    "bytes": "LargeBinary",
    "datetime": "DateTime",
    "date": "Date",
    "time": "Time",
    "timedelta": "Interval",
    "Decimal": "Numeric",
    "UUID": "Uuid",
    "uuid": "Uuid",
    "dict": "JSON",
    "list": "JSON",
}
_SA_NOT_COLUMNS = {"relationship", "relation", "backref", "association_proxy", "column_property", "synonym",
                   "composite", "hybrid_property", "deferred", "query_expression", "dynamic_loader"}
_DJANGO_RELATED = {"ForeignKey", "OneToOneField", "ManyToManyField", "ParentalKey"}
_DJANGO_NOT_COLUMNS = {"GenericForeignKey", "GenericRelation"}
_DJANGO_TYPE_ARGS = ("max_length", "max_digits", "decimal_places")


class PythonSources:
    """The repository's Python files that may hold models, parsed once, with a class index."""

    def __init__(self, files, texts):
        self.trees = []  # [(path, module ast)] in path order
        self.classes = {}  # class name -> [(path, ClassDef)]
        self.django_files = set()
        for file in files:
            if file.language != "python":
                continue
            text = texts(file.path)
            if not any(hint in text for hint in _HINTS):
                continue
            try:
                tree = ast.parse(text, filename=file.path)
            except (SyntaxError, ValueError):
                continue
            self.trees.append((file.path, tree))
            if re.search(r"^\s*(from|import)\s+django\b", text, re.MULTILINE):
                self.django_files.add(file.path)
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    self.classes.setdefault(node.name, []).append((file.path, node))

    def find_class(self, name, near=None):
        candidates = self.classes.get(name) or []
        for path, node in candidates:
            if path == near:
                return path, node
        return candidates[0] if candidates else (None, None)


def _callee(node):
    """`Column` for Column(...), sa.Column(...), db.Column(...); None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _base_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):  # Generic[...] style bases
        return _base_name(node.value)
    return None


def _const(node, default=None):
    return node.value if isinstance(node, ast.Constant) else default


def _kwargs(call):
    return {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}


def _written(node):
    return _QUALIFIERS.sub("", ast.unparse(node))


def _assignments(body):
    """(attribute name, value or None, annotation or None) of each simple assignment in a class body."""
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            yield stmt.targets[0].id, stmt.value, None
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            yield stmt.target.id, stmt.value, stmt.annotation


def _class_constant(node, name):
    for attribute, value, _ in _assignments(node.body):
        if attribute == name:
            return _const(value)
    return None


# --- SQLAlchemy --------------------------------------------------------------------------------


def read_sqlalchemy(python):
    tables, used = Tables(), []
    models = []  # (path, ClassDef, table name) — resolved after every table name is known
    for path, tree in python.trees:
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                name = _class_constant(node, "__tablename__")
                if isinstance(name, str) and not _class_constant(node, "__abstract__"):
                    models.append((path, node, name))
    table_of_class = {node.name: name for _, node, name in models}
    touched = set()
    for path, node, name in models:
        table = tables.create(name, path)
        for column in _sa_class_columns(python, path, node, seen=set()):
            _sa_add(tables, table, column, table_of_class)
        _sa_table_args(tables, table, node)
        touched.add(path)
    for path, tree in python.trees:
        for stmt in tree.body:
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
            if _callee(value) == "Table" and value.args and isinstance(_const(value.args[0]), str):
                table = tables.create(value.args[0].value, path)
                for argument in value.args[1:]:
                    if _callee(argument) in ("Column", "mapped_column"):
                        _sa_add(tables, table, _sa_column(None, argument, None), table_of_class)
                    else:
                        _sa_constraint(tables, table, argument)
                touched.add(path)
    used = [path for path, _ in python.trees if path in touched]
    return tables.tables, used


def _sa_class_columns(python, path, node, seen):
    """The class's own columns, then those of its mixins (SQLAlchemy 2 puts mixin columns last).
    A base that is itself mapped (has a __tablename__) is another table: joined inheritance."""
    if node.name in seen:
        return []
    seen.add(node.name)
    columns = []
    for attribute, value, annotation in _assignments(node.body):
        callee = _callee(value)
        if callee in ("Column", "mapped_column"):
            columns.append(_sa_column(attribute, value, annotation))
        elif value is None and annotation is not None and _mapped_scalar(annotation):
            columns.append(_sa_column(attribute, None, annotation))
    for base in node.bases:
        base_path, base_node = python.find_class(_base_name(base) or "", near=path)
        if base_node is not None and _class_constant(base_node, "__tablename__") is None:
            columns.extend(_sa_class_columns(python, base_path, base_node, seen))
    return columns


def _unwrap_mapped(annotation):
    """(inner type node, optional) of `Mapped[X]`; (None, False) for anything else."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None, False
    if not (isinstance(annotation, ast.Subscript) and _base_name(annotation.value) == "Mapped"):
        return None, False
    inner, optional = annotation.slice, False
    if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.BitOr):
        parts = [inner.left, inner.right]
        kept = [part for part in parts if not (isinstance(part, ast.Constant) and part.value is None)]
        optional = len(kept) < len(parts)
        inner = kept[0] if kept else inner
    elif isinstance(inner, ast.Subscript) and _base_name(inner.value) == "Optional":
        inner, optional = inner.slice, True
    elif isinstance(inner, ast.Subscript) and _base_name(inner.value) == "Union":
        elements = inner.slice.elts if isinstance(inner.slice, ast.Tuple) else [inner.slice]
        kept = [e for e in elements if not (isinstance(e, ast.Constant) and e.value is None)]
        optional = len(kept) < len(elements)
        inner = kept[0] if kept else inner
    return inner, optional


def _mapped_scalar(annotation):
    inner, _ = _unwrap_mapped(annotation)
    return inner is not None and (_base_name(inner) or "") in _ANNOTATION_TYPES


def _sa_column(attribute, call, annotation):
    """A column description from `Column(...)` / `mapped_column(...)` and its `Mapped[...]` annotation."""
    inner, optional = _unwrap_mapped(annotation) if annotation is not None else (None, False)
    column = {"name": attribute, "type": None, "nullable": None, "default": None, "unique": False,
              "primary_key": False, "foreign_key": None}
    args = list(call.args) if call is not None else []
    keywords = _kwargs(call) if call is not None else {}
    if args and isinstance(_const(args[0]), str):
        column["name"] = args.pop(0).value
    for argument in args:
        callee = _callee(argument)
        if callee == "ForeignKey":
            column["foreign_key"] = argument
        elif callee in ("Sequence", "Identity", "Computed", "FetchedValue", "CheckConstraint"):
            continue
        elif column["type"] is None:
            column["type"] = _written(argument)
    if "name" in keywords and isinstance(_const(keywords["name"]), str):
        column["name"] = keywords["name"].value
    if column["type"] is None and "type_" in keywords:
        column["type"] = _written(keywords["type_"])
    if column["type"] is None and inner is not None:
        column["type"] = _ANNOTATION_TYPES.get(_base_name(inner) or "", _written(inner))
    column["primary_key"] = _const(keywords.get("primary_key")) is True
    column["unique"] = _const(keywords.get("unique")) is True
    if "nullable" in keywords and isinstance(_const(keywords["nullable"]), bool):
        column["nullable"] = keywords["nullable"].value
    elif column["primary_key"]:
        column["nullable"] = False
    elif inner is not None:
        column["nullable"] = optional  # SQLAlchemy 2: Mapped[X] is NOT NULL, Mapped[X | None] is not
    else:
        column["nullable"] = True
    for key in ("server_default", "default"):
        if key in keywords:
            column["default"] = _written(keywords[key])
            break
    return column


def _sa_add(tables, table, column, table_of_class):
    if not column["name"]:
        return
    tables.add_column(
        table,
        column["name"],
        column["type"] or "",
        nullable=column["nullable"],
        default=column["default"],
        unique=column["unique"],
        primary_key=column["primary_key"],
    )
    key = column["foreign_key"]
    if key is not None and key.args:
        target = _sa_target(key.args[0], table_of_class)
        if target:
            on_delete = _const(_kwargs(key).get("ondelete"))
            tables.add_foreign_key(
                table, [column["name"]], target[0], [target[1]], on_delete=on_delete and on_delete.upper(),
                name=_const(_kwargs(key).get("name")),
            )


def _sa_target(node, table_of_class):
    """(table, column) of a ForeignKey target: "users.id", "audit.users.id" or `User.id`."""
    value = _const(node)
    if isinstance(value, str) and "." in value:
        table, _, column = value.rpartition(".")
        return table, column
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        table = table_of_class.get(node.value.id)
        if table:
            return table, node.attr
    return None


def _sa_table_args(tables, table, node):
    for attribute, value, _ in _assignments(node.body):
        if attribute != "__table_args__":
            continue
        items = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
        for item in items:
            _sa_constraint(tables, table, item)


def _strings(node):
    """Column names from "a" / ["a", "b"] / ("a",) / a, b positional strings."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts if isinstance(_const(e), str)]
    value = _const(node)
    return [value] if isinstance(value, str) else []


def _sa_constraint(tables, table, node):
    callee = _callee(node)
    if callee == "PrimaryKeyConstraint":
        tables.set_primary_key(table, [name for argument in node.args for name in _strings(argument)])
    elif callee == "ForeignKeyConstraint" and len(node.args) >= 2:
        columns, targets = _strings(node.args[0]), _strings(node.args[1])
        if columns and targets:
            referenced = [target.rpartition(".") for target in targets]
            keywords = _kwargs(node)
            on_delete = _const(keywords.get("ondelete"))
            tables.add_foreign_key(
                table, columns, referenced[0][0], [column for _, _, column in referenced],
                on_delete=on_delete and on_delete.upper(), name=_const(keywords.get("name")),
            )
    elif callee == "UniqueConstraint":
        names = [name for argument in node.args for name in _strings(argument)]
        if len(names) == 1 and (column := tables.column(table, names[0])) is not None:
            column["unique"] = True


# --- Django ------------------------------------------------------------------------------------


def read_django(python):
    if not python.django_files:
        return {}, []
    auto_field = _default_auto_field(python)
    models = {}  # class name -> model description
    for path, tree in python.trees:
        # A model file need not import Django itself: its base model may come from the project.
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and _is_django_model(python, path, node, set()):
                models.setdefault(node.name, _django_model(path, node, auto_field))
    tables, used = Tables(), []
    for model in models.values():
        if model["abstract"] or model["proxy"]:
            continue
        table = tables.create(model["table"], model["path"])
        _django_fields(python, tables, table, model, models)
        if model["path"] not in used:
            used.append(model["path"])
    order = {path: i for i, (path, _) in enumerate(python.trees)}
    return tables.tables, sorted(used, key=order.get)


def _is_django_model(python, path, node, seen):
    if node.name in seen:
        return False
    seen.add(node.name)
    for base in node.bases:
        written = ast.unparse(base)
        if written in ("models.Model", "django.db.models.Model") or (written == "Model" and path in python.django_files):
            return True
        base_path, base_node = python.find_class(_base_name(base) or "", near=path)
        if base_node is not None and _is_django_model(python, base_path, base_node, seen):
            return True
    return False


def _meta(node):
    for stmt in node.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Meta":
            return {attribute: _const(value) for attribute, value, _ in _assignments(stmt.body)}
    return {}


def _app_label(path):
    parts = PurePosixPath(path).parts
    if len(parts) >= 3 and parts[-2] == "models":
        return parts[-3]  # app/models/product.py
    return parts[-2] if len(parts) >= 2 else ""


def _django_model(path, node, auto_field):
    meta = _meta(node)
    label = meta.get("app_label") or _app_label(path)
    default_table = f"{label}_{node.name.lower()}" if label else node.name.lower()
    return {
        "name": node.name,
        "path": path,
        "node": node,
        "table": meta.get("db_table") or default_table,
        "abstract": meta.get("abstract") is True,
        "proxy": meta.get("proxy") is True,
        "auto_field": auto_field.get(label, auto_field.get("", "AutoField")),
        "pk": None,
    }


def _default_auto_field(python):
    """{app label: field class} from AppConfig.default_auto_field, and "" for settings.DEFAULT_AUTO_FIELD."""
    found = {}
    for path, tree in python.trees:
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DEFAULT_AUTO_FIELD"
                                                    for t in node.targets):
                if isinstance(_const(node.value), str):
                    found.setdefault("", node.value.value.rpartition(".")[2])
            elif isinstance(node, ast.ClassDef):
                field = _class_constant(node, "default_auto_field")
                if isinstance(field, str):
                    label = _class_constant(node, "label") or (_class_constant(node, "name") or "").rpartition(".")[2]
                    found[label or PurePosixPath(path).parent.name] = field.rpartition(".")[2]
    return found


def _django_declared_fields(python, model, models, seen):
    """(attribute, call) of the fields declared on the model and inherited from abstract bases."""
    node = model["node"]
    if node.name in seen:
        return []
    seen.add(node.name)
    fields = []
    for base in node.bases:
        parent = models.get(_base_name(base) or "")
        if parent is not None and parent["abstract"]:
            fields.extend(_django_declared_fields(python, parent, models, seen))
    for attribute, value, _ in _assignments(node.body):
        callee = _callee(value)
        if callee and callee not in _DJANGO_NOT_COLUMNS and (callee.endswith("Field") or callee in _DJANGO_RELATED):
            fields = [field for field in fields if field[0] != attribute] + [(attribute, value)]
    return fields


def _django_target(node, model, models):
    """The model a relation points at: a class, "Model", "app.Model", "self", settings.AUTH_USER_MODEL.
    A model outside the repository gets the table Django would give it ("auth.User" -> auth_user)."""
    written = _const(node)
    if isinstance(written, str):
        name = written.rpartition(".")[2]
        if name == "self":
            return model
        return models.get(name) or {"name": name, "table": written.replace(".", "_").lower(), "pk": "id"}
    if (isinstance(node, ast.Attribute) and node.attr == "AUTH_USER_MODEL") or _callee(node) == "get_user_model":
        return models.get("User") or {"name": "User", "table": "auth_user", "pk": "id"}
    name = _base_name(node) or ""
    return models.get(name) or {"name": name, "table": name.lower(), "pk": "id"}


def _django_pk(model, fields):
    for attribute, call in fields:
        if _const(_kwargs(call).get("primary_key")) is True:
            db_column = _const(_kwargs(call).get("db_column"))
            suffix = "_id" if _callee(call) in _DJANGO_RELATED else ""
            return db_column or attribute + suffix
    return None


def _concrete_parents(model, models):
    parents = [models.get(_base_name(base) or "") for base in model["node"].bases]
    return [parent for parent in parents if parent is not None and not parent["abstract"]]


def _django_fields(python, tables, table, model, models):
    fields = _django_declared_fields(python, model, models, set())
    if not _django_pk(model, fields):
        parents = _concrete_parents(model, models)
        if parents:
            # Multi-table inheritance: the child's key is a one-to-one link to its parent's row.
            column = _pk_of(model, python, models)
            tables.add_column(table, column, "OneToOneField", nullable=False, unique=True, primary_key=True)
            parent_key = [_pk_of(parents[0], python, models)]
            tables.add_foreign_key(table, [column], parents[0]["table"], parent_key, on_delete="CASCADE")
        else:
            tables.add_column(table, "id", model["auto_field"], nullable=False, primary_key=True)
    for attribute, call in fields:
        callee = _callee(call)
        keywords = _kwargs(call)
        if callee == "ManyToManyField":
            _django_join_table(python, tables, table, model, models, attribute, call)
            continue
        related = callee in _DJANGO_RELATED
        column_name = _const(keywords.get("db_column")) or (attribute + "_id" if related else attribute)
        if related:
            type_ = callee
        else:
            details = [f"{key}={_const(keywords[key])!r}" for key in _DJANGO_TYPE_ARGS if key in keywords]
            type_ = f"{callee}({', '.join(details)})" if details else callee
        primary = _const(keywords.get("primary_key")) is True
        tables.add_column(
            table,
            column_name,
            type_,
            nullable=_const(keywords.get("null")) is True and not primary,
            default=_written(keywords["default"]) if "default" in keywords else None,
            unique=_const(keywords.get("unique")) is True or callee == "OneToOneField",
            primary_key=primary,
        )
        if related:
            to = call.args[0] if call.args else keywords.get("to")
            if to is None:
                continue
            target = _django_target(to, model, models)
            on_delete = call.args[1] if len(call.args) > 1 else keywords.get("on_delete")
            tables.add_foreign_key(
                table, [column_name], target["table"], [_pk_of(target, python, models)],
                on_delete=_on_delete(on_delete),
            )


def _pk_of(model, python, models):
    """The primary key column of a model (computed once; "id" for models outside the repository)."""
    if model.get("node") is None:
        return model.get("pk") or "id"
    if model.get("pk") is None:
        explicit = _django_pk(model, _django_declared_fields(python, model, models, set()))
        parents = _concrete_parents(model, models)
        model["pk"] = explicit or (f"{parents[0]['name'].lower()}_ptr_id" if parents else "id")
    return model["pk"]


def _on_delete(node):
    if node is None:
        return None
    name = _base_name(node) or ""
    return {"CASCADE": "CASCADE", "SET_NULL": "SET NULL", "PROTECT": "PROTECT", "RESTRICT": "RESTRICT",
            "SET_DEFAULT": "SET DEFAULT", "DO_NOTHING": "NO ACTION"}.get(name, name or None)


def _django_join_table(python, tables, table, model, models, attribute, call):
    keywords = _kwargs(call)
    if "through" in keywords:
        return  # the through model is a table of its own
    to = call.args[0] if call.args else keywords.get("to")
    if to is None:
        return
    target = _django_target(to, model, models)
    name = _const(keywords.get("db_table")) or f"{table['name']}_{attribute}"
    join = tables.create(name, model["path"])
    tables.add_column(join, "id", model["auto_field"], nullable=False, primary_key=True)
    source_name = model["name"].lower()
    target_name = target["name"].lower()
    if target is model:
        source_column, target_column = f"from_{source_name}_id", f"to_{source_name}_id"
    else:
        source_column, target_column = f"{source_name}_id", f"{target_name}_id"
    for column, referenced in ((source_column, model), (target_column, target)):
        tables.add_column(join, column, "ForeignKey", nullable=False)
        tables.add_foreign_key(join, [column], referenced["table"], [_pk_of(referenced, python, models)], on_delete="CASCADE")
