"""Database models. Every table here is created by an Alembic migration in runner/migrations."""
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from runner.extensions import db


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite returns naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use runner.models.utcnow()")
        return value.astimezone(dt.timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)

    tokens = relationship("PersonalAccessToken", back_populates="user", cascade="all, delete-orphan")


class PersonalAccessToken(db.Model):
    """Sanctum-style token: the client holds `<id>|<secret>`, the row holds SHA-256(secret)."""

    __tablename__ = "personal_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    abilities: Mapped[list] = mapped_column(sa.JSON, nullable=False)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    user = relationship("User", back_populates="tokens")


class AgentProvider(TimestampMixin, db.Model):
    __tablename__ = "agent_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    command: Mapped[list] = mapped_column(sa.JSON, nullable=False)
    models: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    config: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)


class ServerParam(db.Model):
    """A stored override of a registry default (runner.settings). Secret values are encrypted."""

    __tablename__ = "server_params"

    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    value: Mapped[object] = mapped_column(sa.JSON, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class Device(TimestampMixin, db.Model):
    """An iPhone registered for APNs pushes; one row per user and device token."""

    __tablename__ = "devices"
    __table_args__ = (sa.UniqueConstraint("user_id", "token", name="uq_devices_user_id_token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    token: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    environment: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(200))


class Project(TimestampMixin, db.Model):
    """A git repository Runner works on: cloned into DATA_DIR/workspaces/projects/<id>/repo."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    repository_url: Mapped[str] = mapped_column(sa.String(2048), nullable=False)
    # None until detected from the remote (when not given at creation).
    default_branch: Mapped[str | None] = mapped_column(sa.String(255))
    default_agent: Mapped[str | None] = mapped_column(sa.String(64))
    default_model: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending", index=True)
    status_detail: Mapped[str | None] = mapped_column(sa.Text)
    progress: Mapped[int | None] = mapped_column(sa.Integer)
    head_sha: Mapped[str | None] = mapped_column(sa.String(64))
    last_job_id: Mapped[str | None] = mapped_column(sa.String(128))
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The code search index (DATA_DIR/workspaces/projects/<id>/search-index) as last built.
    indexed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    indexed_commit: Mapped[str | None] = mapped_column(sa.String(64))
    index_chunks: Mapped[int | None] = mapped_column(sa.Integer)
    index_files: Mapped[int | None] = mapped_column(sa.Integer)

    members = relationship("ProjectMember", back_populates="project", cascade="all, delete-orphan")


class ProjectMember(db.Model):
    """A user other than the owner who may see and work on a project."""

    __tablename__ = "project_members"
    __table_args__ = (sa.UniqueConstraint("project_id", "user_id", name="uq_project_members_project_id_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    project = relationship("Project", back_populates="members")


class Snapshot(db.Model):
    """A git commit on the hidden ref refs/runner/snapshots/<id> capturing a working tree."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    # The run whose worktree was captured; None for the project's own checkout.
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    description: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")
    commit_sha: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    file_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    @property
    def ref(self):
        return f"refs/runner/snapshots/{self.id}"


class Run(TimestampMixin, db.Model):
    """One agent run on a project: a prompt, an agent, and a branch of its own per attempt."""

    __tablename__ = "runs"
    # Never reuse a run id on SQLite: a worker still finishing a deleted run must not touch a new one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    prompt: Mapped[str] = mapped_column(sa.Text, nullable=False)
    selected_agent: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    selected_model: Mapped[str | None] = mapped_column(sa.String(200))
    rag_enabled: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    safe_mode: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="draft", index=True)
    status_detail: Mapped[str | None] = mapped_column(sa.Text)
    attempt: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    branch: Mapped[str | None] = mapped_column(sa.String(255))
    job_id: Mapped[str | None] = mapped_column(sa.String(128))
    review_status: Mapped[str | None] = mapped_column(sa.String(16))
    # The last commit Runner made on the run's branch, and the last sha pushed to the remote.
    commit_sha: Mapped[str | None] = mapped_column(sa.String(64))
    pushed_sha: Mapped[str | None] = mapped_column(sa.String(64))
    pushed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AgentEvent(db.Model):
    """One step of a run, in order; its id is global and monotonic, and is the SSE event id."""

    __tablename__ = "agent_events"
    # SQLite would otherwise reuse the ids of deleted rows: event ids are SSE ids and must only grow.
    __table_args__ = (sa.Index("ix_agent_events_run_id_id", "run_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    event_type: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    severity: Mapped[str] = mapped_column(sa.String(8), nullable=False, default="info")
    path: Mapped[str | None] = mapped_column(sa.String(1024))
    message: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    data: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class WorkspaceFile(db.Model):
    """One path the run changed, against its pre_run snapshot; kept current as the run goes."""

    __tablename__ = "workspace_files"
    __table_args__ = (sa.UniqueConstraint("run_id", "path", name="uq_workspace_files_run_id_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    path: Mapped[str] = mapped_column(sa.String(1024), nullable=False)
    change_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    old_path: Mapped[str | None] = mapped_column(sa.String(1024))
    additions: Mapped[int | None] = mapped_column(sa.Integer)
    deletions: Mapped[int | None] = mapped_column(sa.Integer)
    binary: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class CommandExecution(db.Model):
    """A shell command the agent ran; its output lives in blob files under DATA_DIR/blobs."""

    __tablename__ = "command_executions"
    __table_args__ = (sa.Index("ix_command_executions_run_id_tool_id", "run_id", "tool_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    # The agent's own id of the call (Claude's tool_use_id, codex's item id): pairs start and finish.
    tool_id: Mapped[str | None] = mapped_column(sa.String(200))
    command: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    cwd: Mapped[str | None] = mapped_column(sa.String(1024))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    duration_ms: Mapped[int | None] = mapped_column(sa.Integer)
    # Relative to DATA_DIR.
    stdout_path: Mapped[str | None] = mapped_column(sa.String(1024))
    stderr_path: Mapped[str | None] = mapped_column(sa.String(1024))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RunReview(db.Model):
    """One review of a completed run; the run's review_status is the latest one's decision."""

    __tablename__ = "run_reviews"
    __table_args__ = (sa.Index("ix_run_reviews_run_id_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decision: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # approved | rejected
    notes: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Notification(TimestampMixin, db.Model):
    """One APNs push of a run's news to one device: what was sent and what Apple answered."""

    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_run_id_device_id", "run_id", "device_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    # The run status the push announces (completed, failed, cancelled).
    run_status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    # pending → sent | failed | device_disabled (or retrying while RQ retries it).
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending")
    apns_id: Mapped[str | None] = mapped_column(sa.String(64))
    http_status: Mapped[int | None] = mapped_column(sa.Integer)
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
