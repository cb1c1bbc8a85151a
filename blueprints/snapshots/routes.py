"""Snapshots: capture a project's working tree on a hidden ref, restore it, compare two states."""
from flask import g
from flask.views import MethodView

from blueprints.snapshots.schemas import (
    CompareArgs,
    CompareSchema,
    RestoreSchema,
    SnapshotCreateArgs,
    SnapshotSchema,
)
from runner import policies, projects, states
from runner.api import Blueprint, PageArgs, page_of, paginate
from runner.errors import NotFound, ValidationFailed
from runner.extensions import db
from runner.models import Project, Snapshot
from workspaces import snapshots as git_snapshots

blp = Blueprint("snapshots", __name__, url_prefix="/api", description="Snapshots of working trees")


def _snapshot_or_404(snapshot_id):
    snapshot = db.session.get(Snapshot, snapshot_id)
    if snapshot is not None:
        try:
            policies.project_or_404(snapshot.project_id)
            return snapshot
        except NotFound:
            pass
    raise NotFound(f"No snapshot {snapshot_id} is visible to you.")


def _ready_project(project_id):
    project = policies.project_or_404(project_id)
    return states.require(Project, project, "snapshot")


@blp.route("/projects/<id:project_id>/snapshots")
class ProjectSnapshots(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(SnapshotSchema))
    @blp.problem_responses(404)
    def get(self, args, project_id):
        """Every snapshot of the project, runs' included, newest first"""
        policies.project_or_404(project_id)
        return paginate(db.select(Snapshot).where(Snapshot.project_id == project_id), Snapshot.id, args)

    @blp.requires(policies.PROJECTS_WRITE)
    @blp.arguments(SnapshotCreateArgs)
    @blp.response(201, SnapshotSchema)
    @blp.problem_responses(404, 409)
    def post(self, args, project_id):
        """Capture the project's checkout now (tracked and untracked files, ignored ones left out)"""
        project = _ready_project(project_id)
        with projects.request_lock(project.id):
            return projects.create_snapshot(project, "manual", args["description"], user=g.runner_user)


@blp.route("/snapshots/<id:snapshot_id>")
class SnapshotItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, SnapshotSchema)
    @blp.problem_responses(404)
    def get(self, snapshot_id):
        """A snapshot"""
        return _snapshot_or_404(snapshot_id)


@blp.route("/snapshots/<id:snapshot_id>/restore")
class Restore(MethodView):
    @blp.requires(policies.PROJECTS_WRITE)
    @blp.response(200, RestoreSchema)
    @blp.problem_responses(404, 409)
    def post(self, snapshot_id):
        """Make the working tree match the snapshot exactly, after a `restore_checkpoint` snapshot
        of what it held"""
        snapshot = _snapshot_or_404(snapshot_id)
        project = _ready_project(snapshot.project_id)
        with projects.request_lock(project.id):
            projects.require_snapshot_commit(snapshot)
            checkpoint = projects.create_snapshot(
                project, "restore_checkpoint", "restore checkpoint", user=g.runner_user
            )
            git_snapshots.restore_snapshot(projects.repo_dir(project.id), snapshot.commit_sha)
        return {"restored": snapshot, "checkpoint": checkpoint}


@blp.route("/snapshots/<id:snapshot_id>/compare")
class Compare(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(CompareArgs)
    @blp.response(200, CompareSchema)
    @blp.problem_responses(404, 409)
    def post(self, args, snapshot_id):
        """Compare the snapshot with the current working tree or with another snapshot"""
        snapshot = _snapshot_or_404(snapshot_id)
        project = _ready_project(snapshot.project_id)
        other = "current"
        if args["against"] != "current":
            against = db.session.get(Snapshot, args["against"])
            if against is None or against.project_id != snapshot.project_id:
                raise ValidationFailed({"against": [f"No snapshot {args['against']} of this project."]})
            other = against.commit_sha
        with projects.request_lock(project.id):
            projects.require_snapshot_commit(snapshot)
            return git_snapshots.compare(projects.repo_dir(project.id), snapshot.commit_sha, other)
