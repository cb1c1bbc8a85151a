"""Runs: draft, start, watch (events), pause, resume, cancel, retry; what a run did — its files,
diff, snapshots, commands (with signed links to their output) and review summary; and its review,
commit and push."""
from flask import Response, current_app, g, request, stream_with_context
from flask.views import MethodView

from blueprints.runs.schemas import (
    AgentEventSchema,
    ApproveArgs,
    CommandExecutionDetailSchema,
    CommandExecutionSchema,
    CommittedRunSchema,
    EventListArgs,
    PushQueuedSchema,
    RejectArgs,
    ReviewedRunSchema,
    RunCreateArgs,
    RunDetailSchema,
    RunDiffSchema,
    RunJobSchema,
    RunListArgs,
    RunReviewSchema,
    RunSchema,
    RunSummarySchema,
    StreamArgs,
    WorkspaceFileDetailSchema,
    WorkspaceFileSchema,
)
from blueprints.snapshots.schemas import SnapshotSchema
from runner import events, policies, reviews, runs, states, telemetry
from runner.api import Blueprint, PageArgs, page_of, paginate
from runner.errors import ApiError, NotFound, ValidationFailed
from runner.extensions import db, limit, redis_client
from runner.models import AgentEvent, CommandExecution, Run, RunReview, Snapshot, WorkspaceFile, utcnow
from workspaces.snapshots import CHANGE_TYPES

blp = Blueprint("runs", __name__, url_prefix="/api/runs", description="Agent runs and their events")


def _detail(run):
    return {**_columns(run), "timeline": runs.timeline(run), "push": reviews.push_state(run)}


def _columns(run):
    return {c.key: getattr(run, c.key) for c in Run.__table__.columns}


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


_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "description": "The agent event's id (absent on `end`)"},
        "event": {"type": "string", "enum": ["agent_event", "end"]},
        "data": {"type": "string", "description": "JSON: the agent event, or `{runId, status}` on `end`"},
    },
}


@blp.route("/<id:run_id>/events/stream")
class EventStream(MethodView):
    @blp.requires(policies.PROJECTS_READ, stream=True)
    @blp.arguments(StreamArgs, location="query")
    @blp.doc(
        responses={
            "200": {
                "description": "Server-Sent Events: `id: <event id>`, `event: agent_event`, `data: <event>`; "
                "`:ping` every 15 s; `event: end` with `{runId, status}` once the run is over",
                # The schema of each event of the stream (as OpenAPI 3.2's `itemSchema` says it).
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            }
        }
    )
    @blp.problem_responses(400, 404, 429)
    def get(self, args, run_id):
        """Stream the run's events live, resuming after `Last-Event-ID`"""
        run = runs.run_or_404(run_id)
        last_event_id = _last_event_id(args)
        slots = events.StreamSlots(
            redis_client.connection, g.runner_user.id, current_app.config["STREAMS_PER_USER"]
        )
        if not slots.acquire():
            raise ApiError(
                f"At most {current_app.config['STREAMS_PER_USER']} event streams may be open at once; "
                "close one and retry.",
                status=429,
                slug="too-many-streams",
                title="Too many open streams",
                headers={"Retry-After": "5"},
                retryAfter=5,
            )
        schema = AgentEventSchema()
        body = events.stream(run.id, last_event_id, schema.dump, slots, states.RUN_TERMINAL)
        return Response(
            stream_with_context(body),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


@blp.route("/<id:run_id>/files")
class Files(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(WorkspaceFileSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """The paths the run changed against its base (kept current while it runs)"""
        run = runs.run_or_404(run_id)
        query = db.select(WorkspaceFile).where(WorkspaceFile.run_id == run.id)
        return paginate(query, WorkspaceFile.id, args, newest_first=False)


@blp.route("/<id:run_id>/files/<id:file_id>")
class FileItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, WorkspaceFileDetailSchema)
    @blp.problem_responses(404, 409)
    def get(self, run_id, file_id):
        """One changed file with its full unified diff"""
        run = runs.run_or_404(run_id)
        row = db.session.scalar(db.select(WorkspaceFile).where(WorkspaceFile.id == file_id, WorkspaceFile.run_id == run.id))
        if row is None:
            raise NotFound(f"Run {run.id} has no changed file {file_id}.")
        diff = telemetry.file_diff(telemetry.run_diff(run)["diff"], row)
        return {**{c.key: getattr(row, c.key) for c in WorkspaceFile.__table__.columns}, "diff": diff}


@blp.route("/<id:run_id>/diff")
class Diff(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, RunDiffSchema)
    @blp.problem_responses(404, 409)
    def get(self, run_id):
        """The run's whole diff against its base: the live worktree while it runs, its post_run
        snapshot once it ended"""
        return telemetry.run_diff(runs.run_or_404(run_id))


@blp.route("/<id:run_id>/snapshots")
class RunSnapshots(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(SnapshotSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """The snapshots taken of the run's worktree, oldest first"""
        run = runs.run_or_404(run_id)
        return paginate(db.select(Snapshot).where(Snapshot.run_id == run.id), Snapshot.id, args, newest_first=False)


@blp.route("/<id:run_id>/commands")
class Commands(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(CommandExecutionSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """The shell commands the agent ran, in order"""
        run = runs.run_or_404(run_id)
        query = db.select(CommandExecution).where(CommandExecution.run_id == run.id)
        return paginate(query, CommandExecution.id, args, newest_first=False)


@blp.route("/<id:run_id>/commands/<id:command_id>")
class CommandItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, CommandExecutionDetailSchema)
    @blp.problem_responses(404)
    def get(self, run_id, command_id):
        """One command, with signed links to its stdout and stderr (no token needed; they expire)"""
        run = runs.run_or_404(run_id)
        command = db.session.scalar(
            db.select(CommandExecution).where(CommandExecution.id == command_id, CommandExecution.run_id == run.id)
        )
        if command is None:
            raise NotFound(f"Run {run.id} has no command {command_id}.")
        return {
            **{c.key: getattr(command, c.key) for c in CommandExecution.__table__.columns},
            "stdout_url": telemetry.blob_url(command, "stdout"),
            "stderr_url": telemetry.blob_url(command, "stderr"),
        }


@blp.route("/blobs/<string:token>")
class Blob(MethodView):
    @blp.public
    @blp.doc(
        responses={
            "200": {
                "description": "The command output, as text",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    @blp.problem_responses(403, 404)
    def get(self, token):
        """A command's stdout or stderr behind a signed link from `GET …/commands/{command}`;
        a tampered or expired link is a 403"""
        return Response(telemetry.read_blob(token), mimetype="text/plain", headers={"Cache-Control": "private, no-store"})


@blp.route("/<id:run_id>/summary")
class Summary(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, RunSummarySchema)
    @blp.problem_responses(404, 409)
    def get(self, run_id):
        """The review summary: changed files, risks, tests, docs, token usage, duration"""
        return telemetry.summary(runs.run_or_404(run_id))


def _last_event_id(args):
    header = request.headers.get("Last-Event-ID")
    if header is None:
        return args.get("last_event_id") or 0
    if not header.strip().isdigit():
        raise ValidationFailed({"Last-Event-ID": ["Send the id of the last event received (an integer)."]})
    return int(header)


# --- review, commit, push ----------------------------------------------------------------------


def _commit_body(result):
    if result is None:
        return None
    return {
        **{key: result[key] for key in ("sha", "parent", "branch", "message")},
        "changed_files": [{"path": path, "change_type": CHANGE_TYPES.get(status, "modified")} for status, path in result["changes"]],
    }


@blp.route("/<id:run_id>/approve")
class Approve(MethodView):
    @blp.requires(policies.RUNS_CONTROL)
    @blp.arguments(ApproveArgs, required=False)
    @blp.response(200, ReviewedRunSchema)
    @blp.problem_responses(404, 409)
    def post(self, args, run_id):
        """Approve a completed run; with `commit: true`, commit its worktree too

        Writes a `run_reviews` row, sets `reviewStatus` to `approved` (a later review replaces it;
        every review is kept, see `GET …/reviews`) and adds a `review_submitted` event. Only
        completed runs can be reviewed (409 `run-not-reviewable`). `commit: true` also needs the
        `git:commit` ability and does what `POST …/commit` does in the same step: if the commit
        fails (409 `nothing-to-commit`, `worktree-unavailable` …) the approval is not kept either.
        """
        if args.get("commit"):
            policies.authorize(policies.GIT_COMMIT)
        run = runs.run_or_404(run_id)
        run, review, commit = reviews.submit_review(
            run, g.runner_user, reviews.APPROVED, args.get("notes"), commit=args.get("commit", False)
        )
        return {**_columns(run), "review": review, "commit": _commit_body(commit)}


@blp.route("/<id:run_id>/reject")
class Reject(MethodView):
    @blp.requires(policies.RUNS_CONTROL)
    @blp.arguments(RejectArgs, required=False)
    @blp.response(200, ReviewedRunSchema)
    @blp.problem_responses(404, 409)
    def post(self, args, run_id):
        """Reject a completed run: a `run_reviews` row, `reviewStatus: rejected`, a `review_submitted`
        event. A rejected run can be neither committed nor pushed until approved again."""
        run, review, _ = reviews.submit_review(runs.run_or_404(run_id), g.runner_user, reviews.REJECTED, args.get("notes"))
        return {**_columns(run), "review": review, "commit": None}


@blp.route("/<id:run_id>/reviews")
class Reviews(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(RunReviewSchema))
    @blp.problem_responses(404)
    def get(self, args, run_id):
        """Every review of the run, newest first (the first one decides `reviewStatus`)"""
        run = runs.run_or_404(run_id)
        return paginate(reviews.reviews_query(run), RunReview.id, args)


@blp.route("/<id:run_id>/commit")
class Commit(MethodView):
    @blp.requires(policies.GIT_COMMIT)
    @blp.response(200, CommittedRunSchema)
    @blp.problem_responses(404, 409)
    def post(self, run_id):
        """Commit everything outstanding in the approved run's worktree on its branch

        Tracked changes, new files that are not ignored, and deletions, as one commit by
        `git.authorName` / `git.authorEmail`; the message is the run title, a short summary and a
        `Runner-Run: <id>` trailer. Adds a `commit_created` event and sets `commitSha`. 409 when the
        latest review is not an approval (`run-not-approved`), when there is nothing to commit
        (`nothing-to-commit`: never an empty commit), when the worktree is gone
        (`worktree-unavailable`), or while another git operation holds the project (`project-busy`).
        """
        run, result = reviews.commit_run(runs.run_or_404(run_id))
        return {**_columns(run), "commit": _commit_body(result)}


@blp.route("/<id:run_id>/push")
class Push(MethodView):
    @blp.requires(policies.GIT_PUSH)
    @blp.response(202, PushQueuedSchema)
    @blp.problem_responses(404, 409)
    def post(self, run_id):
        """Queue a push of the run's commit to its branch on the project's remote

        Needs `git:push` (an elevated token, `POST /api/auth/elevate`), the server param
        `safety.autoGitPush` set to true (409 `git-push-disabled` otherwise), an approved review
        (409 `run-not-approved`) and a commit (409 `nothing-to-push`). Never forced, never to the
        default branch (409 `push-to-default-branch`), with the server's git credentials.

        The push runs as a job: the answer is 202 with `jobId` and `push.status: queued`. Follow it
        by polling `GET /api/runs/{run}` (`push.status` becomes `pushed` or `failed`; `push.error`
        holds git's reason — a non-fast-forward, an authentication failure, an unreachable remote —
        with credentials scrubbed) or the run's events after the one in `push.eventId`
        (`GET /api/runs/{run}/events?since=…&eventTypes=pushed,error`): a `pushed` event (branch,
        sha, remote) or an `error` event, both with `data.action: "push"`. The SSE stream carries
        them too, but the stream of a finished run closes once it has sent what is stored.
        """
        run = runs.run_or_404(run_id)
        job_id = reviews.queue_push(run)
        return {**_columns(run), "job_id": job_id, "push": reviews.push_state(run)}
