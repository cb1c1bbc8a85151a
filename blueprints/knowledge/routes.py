"""Knowledge of a project's code: search over its index; the project map, database schema and
architecture diagrams computed from its checkout; the managed docs kept in the repository."""
import uuid

from flask import current_app, request
from flask.views import MethodView
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.routing import BaseConverter

from blueprints.knowledge.schemas import (
    ChangelogEntrySchema,
    DatabaseSchemaSchema,
    DiagramsSchema,
    DocDetailSchema,
    DocSchema,
    DocsRegenerateSchema,
    MapArgs,
    MapPageSchema,
    SearchArgs,
    SearchResultSchema,
)
from jobs import knowledge as knowledge_jobs
from runner import policies, projects, queue
from runner.api import Blueprint, PageArgs, page_of
from runner.errors import ApiError, Conflict, NotFound
from runner.knowledge import cache, diagrams, docs, index
from runner.knowledge import map as project_map
from runner.knowledge import schema as project_schema
from workspaces.git import GitError

blp = Blueprint(
    "knowledge", __name__, url_prefix="/api/projects", description="What Runner knows about a project's code"
)


@blp.route("/<id:project_id>/search")
class Search(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(SearchArgs)
    @blp.response(200, SearchResultSchema)
    @blp.problem_responses(404, 409)
    def post(self, args, project_id):
        """Search the project's code: chunks (a function, a class, a section or a window of lines)
        ranked by BM25 over identifiers split at camelCase and snake_case"""
        project = policies.project_or_404(project_id)
        try:
            hits = index.search(index.project_index_path(project.id), args["query"], args["limit"])
        except index.IndexMissing:
            raise Conflict(
                f"Project {project.id} has no usable search index: it is built after the clone, and "
                f"rebuilt on POST /api/projects/{project.id}/index-rag.",
                slug="index-missing",
                title="No search index",
                projectId=project.id,
                currentStatus=project.status,
            ) from None
        meta = {"indexed_at": project.indexed_at, "indexed_commit": project.indexed_commit}
        return {"data": hits, "meta": meta}


# --- project map, schema, diagrams, managed docs ----------------------------------------------

# The checkout is complete from the end of the clone on (`indexing` included).
_READABLE = ("indexing", "ready")


def _checkout(project_id):
    """The visible project whose checkout can be read; 409 while it has none."""
    project = policies.project_or_404(project_id)
    if project.status not in _READABLE or not projects.repo_dir(project.id).is_dir():
        raise Conflict(
            f"Project {project.id} has no checkout to read while it is '{project.status}'; "
            "wait until it is ready (or clone it again).",
            slug="project-not-ready",
            title="Project is not ready",
            projectId=project.id,
            currentStatus=project.status,
        )
    return project


def _sequence_page(items, args, version):
    """One page of an in-memory list computed from one state of the checkout (the map, the
    changelog). The signed cursor holds the offset and that state: a cursor from before the tree
    changed would skip or repeat rows, so it is refused rather than followed."""
    serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt="runner.knowledge.cursor")
    offset = 0
    if args.get("cursor"):
        try:
            position = serializer.loads(args["cursor"])
        except BadSignature:
            position = None
        if not isinstance(position, dict) or position.get("e") != request.endpoint or position.get("v") != version:
            raise ApiError(
                "The cursor was not issued for this list in its current state (the repository may have "
                "changed since); start again without a cursor.",
                status=400,
                slug="invalid-cursor",
                title="Invalid cursor",
            )
        offset = position["o"]
    limit = args.get("limit") or current_app.config["PAGE_DEFAULT_LIMIT"]
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    next_cursor = serializer.dumps({"e": request.endpoint, "v": version, "o": offset + limit}) if more else None
    return page, next_cursor


def _unreadable(project, exc):
    return Conflict(
        f"Project {project.id}'s checkout cannot be read: {exc.message}",
        slug="project-not-ready",
        title="Project is not ready",
        projectId=project.id,
        currentStatus=project.status,
    )


@blp.route("/<id:project_id>/map")
class ProjectMap(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(MapArgs, location="query")
    @blp.response(200, MapPageSchema)
    @blp.problem_responses(400, 404, 409)
    def get(self, args, project_id):
        """The project map: per file of the default branch's checkout, its language, lines,
        top-level symbols and imports (resolved to repository paths where possible), by path"""
        project = _checkout(project_id)
        try:
            rows, head, state = project_map.project_map(project.id)
        except GitError as exc:
            raise _unreadable(project, exc) from None
        if "path" in args:
            rows = [row for row in rows if row["path"].startswith(args["path"])]
        page, next_cursor = _sequence_page(rows, args, f"{state}:{args.get('path', '')}")
        return {"data": page, "meta": {"next_cursor": next_cursor, "commit": head, "total": len(rows)}}


@blp.route("/<id:project_id>/schema")
class DatabaseSchema(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, DatabaseSchemaSchema)
    @blp.problem_responses(404, 409)
    def get(self, project_id):
        """The database schema read from the repository's migrations and models (SQL, SQLAlchemy,
        Django, Laravel, Prisma); without any, no tables and a `reason`"""
        project = _checkout(project_id)
        try:
            schema, head, _ = project_schema.project_schema(project.id)
        except GitError as exc:
            raise _unreadable(project, exc) from None
        return {**schema, "commit": head}


@blp.route("/<id:project_id>/diagrams")
class ProjectDiagrams(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, DiagramsSchema)
    @blp.problem_responses(404, 409)
    def get(self, project_id):
        """ARCHITECTURE_DIAGRAMS: Mermaid module dependency graph (by folder) and ER diagram"""
        project = _checkout(project_id)
        try:
            rows, head, _ = project_map.project_map(project.id)
            schema, _, _ = project_schema.project_schema(project.id)
        except GitError as exc:
            raise _unreadable(project, exc) from None
        return {"markdown": diagrams.markdown(rows, schema), "diagrams": diagrams.diagrams(rows, schema), "commit": head}


@blp.route("/<id:project_id>/docs")
class ManagedDocs(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.response(200, page_of(DocSchema))
    @blp.problem_responses(404, 409)
    def get(self, project_id):
        """The managed docs (PROJECT_MAP, DATABASE_SCHEMA, ARCHITECTURE_DIAGRAMS, CHANGELOG_AI) and
        when each was last updated in the default branch's checkout"""
        project = _checkout(project_id)
        try:
            states = docs.doc_states(projects.repo_dir(project.id))
        except GitError as exc:
            raise _unreadable(project, exc) from None
        return {"data": states, "meta": {"next_cursor": None}}


class DocSlugConverter(BaseConverter):
    """A managed doc's slug: any path segment but `regenerate`, the action beside the docs (whose
    Allow header would otherwise advertise this GET too)."""

    regex = r"(?!regenerate$)[^/]+"


blp.record_once(lambda state: state.app.url_map.converters.setdefault("docslug", DocSlugConverter))
_SLUG_PARAMETER = {
    "in": "path",
    "name": "slug",
    "required": True,
    "schema": {"type": "string", "enum": list(docs.BY_SLUG)},
}


@blp.route("/<id:project_id>/docs/<docslug:slug>")
class ManagedDocItem(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.doc(parameters=[_SLUG_PARAMETER])
    @blp.response(200, DocDetailSchema)
    @blp.problem_responses(404, 409)
    def get(self, project_id, slug):
        """One managed doc's markdown"""
        project = _checkout(project_id)
        doc = docs.BY_SLUG.get(slug)
        if doc is None:
            raise NotFound(f"No managed doc '{slug}'; the slugs are {', '.join(docs.BY_SLUG)}.", slug="doc-not-found")
        repo = projects.repo_dir(project.id)
        try:
            state = next(s for s in docs.doc_states(repo) if s["slug"] == slug)
        except GitError as exc:
            raise _unreadable(project, exc) from None
        markdown = docs.read_doc(repo, doc) if state["exists"] else None
        if markdown is None:
            raise NotFound(
                f"{doc.path} is not in the repository yet: POST /api/projects/{project.id}/docs/regenerate "
                "writes it (and each completed run refreshes it on its branch).",
                slug="doc-not-found",
            )
        return {**state, "markdown": markdown}


@blp.route("/<id:project_id>/docs/regenerate")
class RegenerateDocs(MethodView):
    @blp.requires(policies.PROJECTS_WRITE)
    @blp.response(202, DocsRegenerateSchema)
    @blp.problem_responses(404, 409)
    def post(self, project_id):
        """Queue a job that regenerates every managed doc's auto-block in the default branch's
        checkout (left uncommitted: Runner never commits to the default branch)"""
        project = _checkout(project_id)
        try:
            states = docs.doc_states(projects.repo_dir(project.id))
        except GitError as exc:
            raise _unreadable(project, exc) from None
        job_id = queue.enqueue(
            knowledge_jobs.regenerate_docs,
            project.id,
            job_id=f"project-{project.id}-docs-{uuid.uuid4().hex[:12]}",
            timeout=current_app.config["GIT_TIMEOUT_SECONDS"] + 300,
        )
        return {"job_id": job_id, "project_id": project.id, "docs": states}


@blp.route("/<id:project_id>/changelog")
class Changelog(MethodView):
    @blp.requires(policies.PROJECTS_READ)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(ChangelogEntrySchema))
    @blp.problem_responses(400, 404, 409)
    def get(self, args, project_id):
        """The entries of CHANGELOG_AI.md in the default branch's checkout: one per completed run
        whose changes reached it, newest first"""
        project = _checkout(project_id)
        repo = projects.repo_dir(project.id)
        try:
            _, state = cache.tree_state(repo)
        except GitError as exc:
            raise _unreadable(project, exc) from None
        entries = docs.changelog(repo)
        page, next_cursor = _sequence_page(entries, args, state)
        return {"data": page, "meta": {"next_cursor": next_cursor}}
