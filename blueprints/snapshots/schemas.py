"""Snapshot bodies."""
import marshmallow as ma

from runner.api import MAX_ID, Schema, UtcDateTime

KINDS = ("manual", "pre_run", "post_run", "restore_checkpoint")


class SnapshotCreateArgs(Schema):
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class SnapshotSchema(Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    run_id = ma.fields.Integer(allow_none=True)
    kind = ma.fields.String(metadata={"enum": list(KINDS)})
    description = ma.fields.String()
    commit_sha = ma.fields.String()
    file_count = ma.fields.Integer()
    created_at = UtcDateTime()


class RestoreSchema(Schema):
    restored = ma.fields.Nested(SnapshotSchema, metadata={"description": "The snapshot now in the tree"})
    checkpoint = ma.fields.Nested(SnapshotSchema, metadata={"description": "The state just before"})


def _against(value):
    if value == "current" or (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID):
        return
    raise ma.ValidationError('Give "current" or a snapshot id.')


class CompareArgs(Schema):
    against = ma.fields.Raw(
        required=True,
        validate=_against,
        metadata={"description": '"current" (the working tree) or another snapshot id', "oneOf": [
            {"type": "string", "enum": ["current"]}, {"type": "integer", "minimum": 1, "maximum": MAX_ID}]},
    )


class ChangedFileSchema(Schema):
    path = ma.fields.String()
    old_path = ma.fields.String(allow_none=True)
    change_type = ma.fields.String(metadata={"enum": ["added", "modified", "deleted", "renamed"]})
    additions = ma.fields.Integer(allow_none=True)
    deletions = ma.fields.Integer(allow_none=True)
    binary = ma.fields.Boolean()


class DiffStatsSchema(Schema):
    files_changed = ma.fields.Integer()
    additions = ma.fields.Integer()
    deletions = ma.fields.Integer()


class CompareSchema(Schema):
    files = ma.fields.List(ma.fields.Nested(ChangedFileSchema))
    diff = ma.fields.String(metadata={"description": "Unified diff (git diff -M)"})
    stats = ma.fields.Nested(DiffStatsSchema)
