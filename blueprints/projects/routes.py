"""Projects: register a repository, follow its clone, pull it, re-clone it, archive it."""
from flask import g
from flask.views import MethodView

from blueprints.projects.schemas import (
    ProjectCreateArgs,
    ProjectJobSchema,
    ProjectListArgs,
    ProjectSchema,
    ProjectUpdateArgs,
)
from jobs import projects as project_jobs
from runner import policies, projects, states
from runner.api import Blueprint, page_of, paginate
from runner.extensions import db
from runner.models import Project, utcnow

blp = Blueprint("projects", __name__, url_prefix="/api/projects", description="Projects and their repositories")


def _queued(project, job, action):
    projects.queue_job(project, job, action)
    return project


@blp.route("")
class Projects(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(ProjectListArgs, location="query")
    @blp.response(200, page_of(ProjectSchema))
    def get(self, args):
        """Projects you own or are a member of (all, for admins); archived ones are left out"""
        query = policies.visible_projects(db.select(Project).where(Project.status != "archived"))
        if "status" in args:
            query = query.where(Project.status == args["status"])
        return paginate(query, Project.id, args)

    @blp.requires(policies.PROJECTS_WRITE)
    @blp.arguments(ProjectCreateArgs)
    @blp.response(202, ProjectJobSchema)
    def post(self, args):
        """Register a repository; a job clones it (and indexes it), reported through `status`"""
        project = Project(owner_id=g.runner_user.id, status="pending", status_detail="queued for cloning", **args)
        db.session.add(project)
        db.session.commit()
        return _queued(project, project_jobs.clone_project, "clone")


@blp.route("/<id:project_id>")
class ProjectItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, ProjectSchema)
    @blp.problem_responses(404)
    def get(self, project_id):
        """A project, archived ones included"""
        return policies.project_or_404(project_id)

    @blp.requires(policies.PROJECTS_WRITE)
    @blp.arguments(ProjectUpdateArgs)
    @blp.response(200, ProjectSchema)
    @blp.problem_responses(404, 409)
    def put(self, args, project_id):
        """Change the name, description or run defaults (an archived project is read-only)"""
        project = policies.project_or_404(project_id)
        return states.require(Project, project, "update", args)

    @blp.requires(policies.PROJECTS_WRITE)
    @blp.response(204)
    @blp.problem_responses(404, 409)
    def delete(self, project_id):
        """Archive: the row stays (re-clone brings it back), the workspace is moved aside"""
        project = policies.project_or_404(project_id)
        states.require(Project, project, "archive", {"archived_at": utcnow(), "status_detail": None, "progress": None})
        projects.queue_job(project, project_jobs.archive_project, "archive")


def _action(name, job, doc):
    def post(self, project_id):
        project = policies.project_or_404(project_id)
        states.require(Project, project, name, _ACTION_VALUES.get(name))
        return _queued(project, job, name)

    post.__doc__ = doc
    post = blp.problem_responses(404, 409)(blp.response(202, ProjectJobSchema)(post))
    return blp.requires(policies.PROJECTS_WRITE)(post)


_ACTION_VALUES = {
    "clone": {"status_detail": "queued for cloning", "progress": None, "archived_at": None},
    "pull": {"status_detail": "queued for pull"},
    "index": {"status_detail": "queued for indexing"},
}


@blp.route("/<id:project_id>/clone")
class Clone(MethodView):
    post = _action("clone", project_jobs.clone_project, "Clone again (only from `error` or `archived`)")


@blp.route("/<id:project_id>/pull")
class Pull(MethodView):
    post = _action("pull", project_jobs.pull_project, "Fast-forward the default branch (never merges)")


@blp.route("/<id:project_id>/index-rag")
class IndexRag(MethodView):
    post = _action("index", project_jobs.index_project, "Rebuild the project's retrieval index")
