"""Run bodies: drafts, lists, the run with its timeline, and agent events."""
import marshmallow as ma

from blueprints.snapshots.schemas import ChangedFileSchema, DiffStatsSchema
from runner import events
from runner.api import MAX_ID, PageArgs, Schema, StrictBoolean, UtcDateTime
from runner.states import RUN_STATUSES


class RunCreateArgs(Schema):
    project_id = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID))
    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    prompt = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100_000))
    selected_agent = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    selected_model = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=200))
    rag_enabled = StrictBoolean(load_default=False)
    safe_mode = StrictBoolean(load_default=False)


class RunListArgs(PageArgs):
    project_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_ID))
    status = ma.fields.String(validate=ma.validate.OneOf(RUN_STATUSES))


class TimelineSchema(Schema):
    event_counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    last_event_id = ma.fields.Integer(allow_none=True)
    last_event_at = UtcDateTime(allow_none=True)
    queued_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Created to started"})
    running_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Started to finished (or now)"})


class RunSchema(Schema):
    id = ma.fields.Integer()
    project_id = ma.fields.Integer()
    title = ma.fields.String()
    prompt = ma.fields.String()
    selected_agent = ma.fields.String()
    selected_model = ma.fields.String(allow_none=True)
    rag_enabled = ma.fields.Boolean()
    safe_mode = ma.fields.Boolean()
    status = ma.fields.String(metadata={"enum": list(RUN_STATUSES)})
    status_detail = ma.fields.String(allow_none=True)
    attempt = ma.fields.Integer()
    branch = ma.fields.String(allow_none=True)
    review_status = ma.fields.String(
        allow_none=True, metadata={"enum": ["approved", "rejected", None], "description": "The latest review's decision; null before any"}
    )
    commit_sha = ma.fields.String(allow_none=True, metadata={"description": "The last commit Runner made on the run's branch"})
    pushed_sha = ma.fields.String(allow_none=True, metadata={"description": "The last commit pushed to the remote"})
    pushed_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class PushStateSchema(Schema):
    status = ma.fields.String(metadata={"enum": ["queued", "pushed", "failed"]})
    job_id = ma.fields.String(allow_none=True, metadata={"description": "The push job"})
    sha = ma.fields.String(allow_none=True, metadata={"description": "The commit pushed (or to be pushed)"})
    error = ma.fields.String(allow_none=True, metadata={"description": "failed: git's reason, credentials scrubbed"})
    event_id = ma.fields.Integer(metadata={"description": "The agent event that tells this state"})
    at = UtcDateTime()


class RunDetailSchema(RunSchema):
    timeline = ma.fields.Nested(TimelineSchema)
    push = ma.fields.Nested(
        PushStateSchema, allow_none=True, metadata={"description": "The latest push, from the run's events; null if never pushed"}
    )


class RunJobSchema(RunSchema):
    job_id = ma.fields.String(metadata={"description": "The queued job"})


def _event_types(value):
    unknown = [name for name in value.split(",") if name not in events.EVENT_TYPES]
    if unknown:
        raise ma.ValidationError(f"Unknown event types: {', '.join(unknown)}.")


class EventListArgs(PageArgs):
    since = ma.fields.Integer(validate=ma.validate.Range(min=0), metadata={"description": "Events after this id"})
    event_types = ma.fields.String(
        validate=_event_types,
        metadata={
            "description": "Comma-separated event types",
            "pattern": "^({0})(,({0}))*$".format("|".join(events.EVENT_TYPES)),
        },
    )
    severity = ma.fields.String(validate=ma.validate.OneOf(events.SEVERITIES), metadata={"description": "Minimum"})
    path = ma.fields.String(validate=ma.validate.Length(min=1, max=1024), metadata={"description": "Path prefix"})


class AgentEventSchema(Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    event_type = ma.fields.String()
    severity = ma.fields.String()
    path = ma.fields.String(allow_none=True)
    message = ma.fields.String()
    data = ma.fields.Dict()
    created_at = UtcDateTime()


class StreamArgs(Schema):
    last_event_id = ma.fields.Integer(
        validate=ma.validate.Range(min=0), metadata={"description": "For clients that cannot send Last-Event-ID"}
    )
    stream_token = ma.fields.String(metadata={"description": "From POST /api/auth/stream-token"})


class WorkspaceFileSchema(Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    path = ma.fields.String()
    change_type = ma.fields.String(metadata={"enum": ["added", "modified", "deleted", "renamed"]})
    old_path = ma.fields.String(allow_none=True, metadata={"description": "Renames: the path before"})
    additions = ma.fields.Integer(allow_none=True, metadata={"description": "None for binary files"})
    deletions = ma.fields.Integer(allow_none=True, metadata={"description": "None for binary files"})
    binary = ma.fields.Boolean()
    updated_at = UtcDateTime()


class WorkspaceFileDetailSchema(WorkspaceFileSchema):
    diff = ma.fields.String(metadata={"description": "The full unified diff of this file against the run's base"})


class RunDiffSchema(Schema):
    diff = ma.fields.String(metadata={"description": "Unified diff against the pre_run snapshot"})
    stats = ma.fields.Nested(DiffStatsSchema)
    files = ma.fields.List(ma.fields.Nested(ChangedFileSchema))


class CommandExecutionSchema(Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    tool_id = ma.fields.String(allow_none=True, metadata={"description": "The agent's own id of the call"})
    command = ma.fields.String()
    cwd = ma.fields.String(allow_none=True)
    exit_code = ma.fields.Integer(allow_none=True, metadata={"description": "None: still running, or never ran"})
    duration_ms = ma.fields.Integer(allow_none=True)
    started_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)


class CommandExecutionDetailSchema(CommandExecutionSchema):
    stdout_url = ma.fields.String(
        allow_none=True, metadata={"description": "Signed link to the output, no token needed; expires"}
    )
    stderr_url = ma.fields.String(allow_none=True, metadata={"description": "Likewise for stderr"})


class RiskSchema(Schema):
    level = ma.fields.String(metadata={"enum": ["low", "medium", "high"]})
    reason = ma.fields.String()
    paths = ma.fields.List(ma.fields.String())


class SummaryFileSchema(Schema):
    path = ma.fields.String()
    change_type = ma.fields.String(metadata={"enum": ["added", "modified", "deleted", "renamed"]})
    additions = ma.fields.Integer(allow_none=True)
    deletions = ma.fields.Integer(allow_none=True)


class TestCommandSchema(Schema):
    command_id = ma.fields.Integer()
    command = ma.fields.String()
    exit_code = ma.fields.Integer(allow_none=True)
    duration_ms = ma.fields.Integer(allow_none=True)


class TokenUsageSchema(Schema):
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    cache_creation_input_tokens = ma.fields.Integer()
    cache_read_input_tokens = ma.fields.Integer()
    total_cost_usd = ma.fields.Float(allow_none=True)


class RunSummarySchema(Schema):
    changed_files = ma.fields.List(ma.fields.Nested(SummaryFileSchema))
    risks = ma.fields.List(ma.fields.Nested(RiskSchema))
    tests = ma.fields.List(ma.fields.Nested(TestCommandSchema), metadata={"description": "Commands recognised as tests"})
    docs = ma.fields.List(ma.fields.Nested(SummaryFileSchema), metadata={"description": "Documentation files changed"})
    token_usage = ma.fields.Nested(TokenUsageSchema)
    duration_ms = ma.fields.Integer(allow_none=True)


# --- review, commit, push ----------------------------------------------------------------------


class RejectArgs(Schema):
    notes = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=10_000))


class ApproveArgs(RejectArgs):
    commit = StrictBoolean(
        load_default=False,
        metadata={"description": "Also commit the worktree (needs `git:commit`); if the commit fails, the approval is not kept"},
    )


class RunReviewSchema(Schema):
    id = ma.fields.Integer()
    run_id = ma.fields.Integer()
    user_id = ma.fields.Integer(allow_none=True, metadata={"description": "The reviewer; null once deleted"})
    decision = ma.fields.String(metadata={"enum": ["approved", "rejected"]})
    notes = ma.fields.String(allow_none=True)
    created_at = UtcDateTime()


class CommitFileSchema(Schema):
    path = ma.fields.String()
    change_type = ma.fields.String(metadata={"enum": ["added", "modified", "deleted"]})


class CommitSchema(Schema):
    sha = ma.fields.String()
    parent = ma.fields.String(allow_none=True)
    branch = ma.fields.String()
    message = ma.fields.String()
    changed_files = ma.fields.List(ma.fields.Nested(CommitFileSchema))


class ReviewedRunSchema(RunSchema):
    review = ma.fields.Nested(RunReviewSchema, metadata={"description": "The review just recorded"})
    commit = ma.fields.Nested(CommitSchema, allow_none=True, metadata={"description": "With `commit: true`: the commit made"})


class CommittedRunSchema(RunSchema):
    commit = ma.fields.Nested(CommitSchema)


class PushQueuedSchema(RunSchema):
    job_id = ma.fields.String(metadata={"description": "The queued push job"})
    push = ma.fields.Nested(PushStateSchema)
