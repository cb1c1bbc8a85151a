"""Runs: draft, start, watch (events), pause, resume, cancel, retry."""
from flask import g
from flask.views import MethodView

from blueprints.runs.schemas import (
    AgentEventSchema,
    EventListArgs,
    RunCreateArgs,
    RunDetailSchema,
    RunJobSchema,
    RunListArgs,
    RunSchema,
)
from runner import policies, runs
from runner.api import Blueprint, page_of, paginate
from runner.extensions import db, limit
from runner.models import AgentEvent, Run, utcnow

blp = Blueprint("runs", __name__, url_prefix="/api/runs", description="Agent runs and their events")


def _detail(run):
    return {**{c.key: getattr(run, c.key) for c in Run.__table__.columns}, "timeline": runs.timeline(run)}


@blp.route("")
class Runs(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(RunListArgs, location="query")
    @blp.response(200, page_of(RunSchema))
    def get(self, args):
        """Runs of the projects you can see, newest first; filter by project and status"""
        query = runs.visible_runs(db.select(Run))
        if "project_id" in args:
            query = query.where(Run.project_id == args["project_id"])
        if "status" in args:
            query = query.where(Run.status == args["status"])
        return paginate(query, Run.id, args)

    @blp.requires(policies.RUNS_START)
    @blp.arguments(RunCreateArgs)
    @blp.response(201, RunSchema)
    def post(self, args):
        """Create a draft run (nothing runs until `start`)"""
        return runs.create_draft(g.runner_user, args)


@blp.route("/<id:run_id>")
class RunItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, RunDetailSchema)
    @blp.problem_responses(404)
    def get(self, run_id):
        """A run with its timeline summary"""
        return _detail(runs.run_or_404(run_id))


@blp.route("/<id:run_id>/start")
class Start(MethodView):
    @blp.requires(policies.RUNS_START)
    @limit("RATELIMIT_RUN_START")
    @blp.response(202, RunJobSchema)
    @blp.problem_responses(404, 409, 429)
    def post(self, run_id):
        """Queue a draft run: `draft → queued`; a worker then runs the agent"""
        run = runs.apply(runs.run_or_404(run_id), "start")
        runs.queue_run(run)
        return run


@blp.route("/<id:run_id>/retry")
class Retry(MethodView):
    @blp.requires(policies.RUNS_CONTROL)
    @limit("RATELIMIT_RUN_START")
    @blp.response(202, RunJobSchema)
    @blp.problem_responses(404, 409, 429)
    def post(self, run_id):
        """Run a failed or cancelled run again: same prompt, next attempt, a new branch"""
        run = runs.run_or_404(run_id)
        run = runs.apply(
            run,
            "retry",
            {"attempt": Run.attempt + 1, "branch": None, "started_at": None, "finished_at": None, "status_detail": None},
        )
        runs.queue_run(run)
        return run


def _control(action, doc, values=None):
    def post(self, run_id):
        return runs.apply(runs.run_or_404(run_id), action, values() if values else None)

    post.__doc__ = doc
    post = blp.problem_responses(404, 409)(blp.response(200, RunSchema)(post))
    return blp.requires(policies.RUNS_CONTROL)(post)


@blp.route("/<id:run_id>/pause")
class Pause(MethodView):
    post = _control("pause", "Pause the agent (its process group is stopped): `running → paused`")


@blp.route("/<id:run_id>/resume")
class Resume(MethodView):
    post = _control("resume", "Resume a paused agent: `paused → running`")


@blp.route("/<id:run_id>/cancel")
class Cancel(MethodView):
    post = _control(
        "cancel",
        "Cancel a run that has not ended; a live agent gets SIGTERM, then SIGKILL after a grace period",
        lambda: {"finished_at": utcnow()},
    )


@blp.route("/<id:run_id>/events")
class Events(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(EventListArgs, location="query")
    @blp.response(200, page_of(AgentEventSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """The run's events in order (oldest first), filtered; `since` resumes after an event id"""
        run = runs.run_or_404(run_id)
        return paginate(runs.event_query(run, args), AgentEvent.id, args, newest_first=False)
