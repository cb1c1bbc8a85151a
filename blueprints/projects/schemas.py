"""Project bodies."""
import re
from pathlib import Path

import marshmallow as ma
from flask import current_app

from runner.api import PageArgs, Schema, UtcDateTime
from runner.states import PROJECT_STATUSES
from workspaces import repository

# git check-ref-format's rules for a branch name, checked without running git.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)")


def _name(value):
    if not value.strip() or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ma.ValidationError("Give a name of visible characters.")


def _branch(value):
    if (
        _FORBIDDEN.search(value)
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", "."))
        or value == "@"
    ):
        raise ma.ValidationError("Not a valid git branch name.")


def _repository_url(value):
    try:
        url = repository.validate_url(value, allow_local=current_app.config["ALLOW_LOCAL_REPOS"])
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None
    if url.startswith(("/", "file://")):
        # Every user's checkouts and worktrees live there (and Runner's secret key): a local path
        # into it would clone another user's project.
        data_dir = Path(current_app.config["DATA_DIR"]).resolve()
        path = Path(url.removeprefix("file://")).resolve()
        if path == data_dir or data_dir in path.parents:
            raise ma.ValidationError("Runner's own data directory cannot be a project's repository.")


class ProjectCreateArgs(Schema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=1, max=100), _name])
    repository_url = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1, max=2048), _repository_url],
        metadata={"description": "https, ssh, git@host:path; file:// and local paths when allowed"},
    )
    default_branch = ma.fields.String(
        validate=[ma.validate.Length(min=1, max=255), _branch],
        metadata={"description": "Detected from the remote when not given"},
    )
    description = ma.fields.String(validate=ma.validate.Length(max=10000))


class ProjectUpdateArgs(Schema):
    name = ma.fields.String(validate=[ma.validate.Length(min=1, max=100), _name])
    description = ma.fields.String(validate=ma.validate.Length(max=10000))
    default_branch = ma.fields.String(validate=[ma.validate.Length(min=1, max=255), _branch])
    default_agent = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=64))
    default_model = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=200))


class ProjectListArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf([s for s in PROJECT_STATUSES if s != "archived"]))


class ProjectSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    description = ma.fields.String()
    repository_url = ma.fields.String()
    default_branch = ma.fields.String(allow_none=True)
    default_agent = ma.fields.String(allow_none=True)
    default_model = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"enum": list(PROJECT_STATUSES)})
    status_detail = ma.fields.String(allow_none=True)
    progress = ma.fields.Integer(allow_none=True, metadata={"description": "Percent, where git reports it"})
    head_sha = ma.fields.String(allow_none=True)
    owner_id = ma.fields.Integer()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    archived_at = UtcDateTime(allow_none=True)
    indexed_at = UtcDateTime(allow_none=True, metadata={"description": "When the code search index was last built"})
    indexed_commit = ma.fields.String(allow_none=True, metadata={"description": "The commit the index reflects"})
    index_chunks = ma.fields.Integer(allow_none=True, metadata={"description": "Chunks in the index"})
    index_files = ma.fields.Integer(allow_none=True, metadata={"description": "Files in the index"})


class ProjectJobSchema(ProjectSchema):
    job_id = ma.fields.String(attribute="last_job_id", metadata={"description": "The queued job"})
