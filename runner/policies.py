"""Abilities and visibility: the one place that decides who may do what and who sees which rows."""
from flask import g

from runner.errors import Forbidden, NotFound
from runner.extensions import db

PROJECTS_READ = "projects:read"
PROJECTS_WRITE = "projects:write"
RUNS_START = "runs:start"
RUNS_CONTROL = "runs:control"
GIT_COMMIT = "git:commit"
GIT_PUSH = "git:push"
SETTINGS_READ = "settings:read"
SETTINGS_WRITE = "settings:write"

ABILITIES = (
    PROJECTS_READ,
    PROJECTS_WRITE,
    RUNS_START,
    RUNS_CONTROL,
    GIT_COMMIT,
    GIT_PUSH,
    SETTINGS_READ,
    SETTINGS_WRITE,
)
# Granted only by POST /api/auth/elevate (short-lived, password re-checked) or `runner tokens create`.
ELEVATED = (GIT_PUSH, SETTINGS_WRITE)
ADMIN_ONLY = (SETTINGS_WRITE,)
DEFAULT_MOBILE = ("projects:*", RUNS_START, RUNS_CONTROL, GIT_COMMIT, SETTINGS_READ)


def matches(granted, ability):
    """Whether one granted pattern (`*`, `projects:*`, `projects:read`) covers `ability`."""
    if granted == "*" or granted == ability:
        return True
    return granted.endswith(":*") and ability.startswith(granted[:-1])


def has_ability(abilities, ability):
    return any(matches(granted, ability) for granted in abilities)


def is_valid_pattern(pattern):
    """A known ability, `*`, or `group:*` for a known group."""
    if pattern == "*" or pattern in ABILITIES:
        return True
    return pattern.endswith(":*") and any(a.startswith(pattern[:-1]) for a in ABILITIES)


def grants_elevated(pattern):
    return any(matches(pattern, ability) for ability in ELEVATED)


def expand(abilities):
    """The concrete abilities a list of patterns grants, in canonical order."""
    return [ability for ability in ABILITIES if has_ability(abilities, ability)]


def authorize(ability):
    """Raise 403 (`requiredAbility`) unless the calling token holds `ability`."""
    token = g.runner_token
    if not has_ability(token.abilities, ability):
        raise Forbidden(
            f"This action needs the '{ability}' ability, which this token does not hold.",
            requiredAbility=ability,
        )


def require_admin(detail="Only administrators may do this."):
    if not g.runner_user.is_admin:
        raise Forbidden(detail, slug="admin-required", title="Administrator required")


def visible_projects(query, user=None):
    """Restrict a select of projects to those the user owns or is a member of; admins see all."""
    from runner.models import Project, ProjectMember

    user = user or g.runner_user
    if user.is_admin:
        return query
    member_of = db.select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
    return query.where((Project.owner_id == user.id) | Project.id.in_(member_of))


def project_or_404(project_id, user=None):
    """The project if the user may see it; anyone else's is a 404, exactly like a missing one."""
    from runner.models import Project

    project = db.session.scalar(visible_projects(db.select(Project).where(Project.id == project_id), user))
    if project is None:
        raise NotFound(f"No project {project_id} is visible to you.")
    return project


def owned_or_404(model, object_id, user=None):
    """The row `object_id` of `model` if it belongs to the user; other users' rows are 404."""
    user = user or g.runner_user
    row = db.session.get(model, object_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"No {model.__name__.lower()} {object_id} is visible to you.")
    return row
