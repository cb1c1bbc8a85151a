"""Knowledge bodies: code search, the project map, schema and diagrams, managed docs."""
import marshmallow as ma

from runner.api import PageArgs, PageMetaSchema, Schema, UtcDateTime


def _not_blank(value):
    if not value.strip():
        raise ma.ValidationError("Give some words or identifiers to search for.")


class SearchArgs(Schema):
    query = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1, max=1000), _not_blank],
        metadata={"description": "Words or identifiers; camelCase and snake_case names match their parts"},
    )
    limit = ma.fields.Integer(load_default=10, strict=True, validate=ma.validate.Range(min=1, max=50))


class SearchHitSchema(Schema):
    path = ma.fields.String()
    start_line = ma.fields.Integer()
    end_line = ma.fields.Integer()
    symbol = ma.fields.String(allow_none=True, metadata={"description": "The function, class or section, if any"})
    score = ma.fields.Float(metadata={"description": "BM25 relevance: higher is better"})
    snippet = ma.fields.String(metadata={"description": "The lines around the best match"})
    snippet_start_line = ma.fields.Integer()


class SearchMetaSchema(Schema):
    indexed_at = UtcDateTime(allow_none=True)
    indexed_commit = ma.fields.String(allow_none=True)


class SearchResultSchema(Schema):
    data = ma.fields.List(ma.fields.Nested(SearchHitSchema), metadata={"description": "Best first"})
    meta = ma.fields.Nested(SearchMetaSchema)


# --- project map, schema, diagrams, managed docs ----------------------------------------------


class MapArgs(PageArgs):
    path = ma.fields.String(
        validate=ma.validate.Length(min=1, max=1024),
        metadata={"description": "Only files whose path starts with this (a folder such as `src/`, or a file)"},
    )


class MapSymbolSchema(Schema):
    name = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "function, class, method, interface, type, struct, constant, …"})
    line = ma.fields.Integer()


class MapImportSchema(Schema):
    module = ma.fields.String(metadata={"description": "As written in the file"})
    path = ma.fields.String(
        allow_none=True,
        metadata={"description": "The repository file (or Go package folder) it names; null for third-party modules"},
    )


class MapRowSchema(Schema):
    path = ma.fields.String()
    language = ma.fields.String(allow_none=True)
    lines = ma.fields.Integer()
    symbols = ma.fields.List(ma.fields.Nested(MapSymbolSchema), metadata={"description": "Top-level declarations"})
    imports = ma.fields.List(ma.fields.Nested(MapImportSchema))


class MapMetaSchema(PageMetaSchema):
    commit = ma.fields.String(allow_none=True, metadata={"description": "The checkout's HEAD the map was computed from"})
    total = ma.fields.Integer(metadata={"description": "Files matching the filter, over all pages"})


class MapPageSchema(Schema):
    data = ma.fields.List(ma.fields.Nested(MapRowSchema))
    meta = ma.fields.Nested(MapMetaSchema)


class ColumnSchema(Schema):
    name = ma.fields.String()
    type = ma.fields.String(
        metadata={"description": "As the source writes it: VARCHAR(255), String(254), CharField(max_length=100), string, Int"}
    )
    nullable = ma.fields.Boolean()
    default = ma.fields.String(allow_none=True)
    unique = ma.fields.Boolean()


class ForeignKeySchema(Schema):
    name = ma.fields.String(allow_none=True)
    columns = ma.fields.List(ma.fields.String())
    references_table = ma.fields.String()
    references_columns = ma.fields.List(ma.fields.String())
    on_delete = ma.fields.String(allow_none=True)


class TableSchema(Schema):
    name = ma.fields.String()
    columns = ma.fields.List(ma.fields.Nested(ColumnSchema))
    primary_key = ma.fields.List(ma.fields.String())
    foreign_keys = ma.fields.List(ma.fields.Nested(ForeignKeySchema))
    source = ma.fields.String(metadata={"description": "The file that defines the table"})


class RelationSchema(Schema):
    from_table = ma.fields.String()
    from_columns = ma.fields.List(ma.fields.String())
    to_table = ma.fields.String()
    to_columns = ma.fields.List(ma.fields.String())
    kind = ma.fields.String(metadata={"enum": ["many-to-one", "one-to-one"]})


class SchemaSourceSchema(Schema):
    path = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": ["sql", "laravel", "prisma", "sqlalchemy", "django"]})


class DatabaseSchemaSchema(Schema):
    tables = ma.fields.List(ma.fields.Nested(TableSchema))
    relations = ma.fields.List(ma.fields.Nested(RelationSchema), metadata={"description": "One per foreign key"})
    sources = ma.fields.List(
        ma.fields.Nested(SchemaSourceSchema), metadata={"description": "The files read, in the order applied"}
    )
    reason = ma.fields.String(allow_none=True, metadata={"description": "Why there are no tables, when there are none"})
    commit = ma.fields.String(allow_none=True)


class DiagramSchema(Schema):
    name = ma.fields.String(metadata={"enum": ["modules", "schema"]})
    title = ma.fields.String()
    description = ma.fields.String()
    mermaid = ma.fields.String(metadata={"description": "Mermaid source (flowchart LR / erDiagram)"})


class DiagramsSchema(Schema):
    markdown = ma.fields.String(metadata={"description": "ARCHITECTURE_DIAGRAMS markdown with ```mermaid blocks"})
    diagrams = ma.fields.List(ma.fields.Nested(DiagramSchema))
    commit = ma.fields.String(allow_none=True)


class DocSchema(Schema):
    slug = ma.fields.String()
    title = ma.fields.String()
    path = ma.fields.String(metadata={"description": "In the repository"})
    exists = ma.fields.Boolean(metadata={"description": "Whether the default branch's checkout has the file"})
    updated_at = UtcDateTime(
        allow_none=True,
        metadata={"description": "The last commit touching the file, or its write time when regenerated since"},
    )


class DocDetailSchema(DocSchema):
    markdown = ma.fields.String()


class DocsRegenerateSchema(Schema):
    job_id = ma.fields.String(metadata={"description": "The queued job"})
    project_id = ma.fields.Integer()
    docs = ma.fields.List(ma.fields.Nested(DocSchema), metadata={"description": "The docs as they are before the job runs"})


class ChangelogFileSchema(Schema):
    path = ma.fields.String()
    change_type = ma.fields.String(metadata={"description": "added, modified, deleted, renamed"})


class ChangelogEntrySchema(Schema):
    run_id = ma.fields.Integer()
    date = ma.fields.String(metadata={"description": "YYYY-MM-DD (UTC)"})
    title = ma.fields.String()
    summary = ma.fields.String()
    files = ma.fields.List(ma.fields.Nested(ChangelogFileSchema))
