"""State machines of projects (and, with their issue, runs): which action moves what from where.

Every transition is one conditional UPDATE (`... WHERE id = ? AND status IN (allowed)`), so two
racing requests cannot both win: the loser changes nothing and gets a 409 problem naming the
current status and the statuses the action is allowed from.
"""
import dataclasses

from runner.errors import Conflict
from runner.extensions import db


@dataclasses.dataclass(frozen=True)
class Action:
    allowed_from: tuple
    to: str | None  # None: the status stays (the action only needs the status to allow it)


PROJECT_STATUSES = ("pending", "cloning", "indexing", "ready", "error", "archived")

# Actions asked for over the API.
PROJECT_ACTIONS = {
    "clone": Action(("error", "archived"), "pending"),
    "pull": Action(("ready",), None),
    "index": Action(("ready",), "indexing"),
    "archive": Action(("pending", "cloning", "indexing", "ready", "error"), "archived"),
    "update": Action(("pending", "cloning", "indexing", "ready", "error"), None),
    "snapshot": Action(("ready",), None),
}

# Steps the jobs take. A job whose project was archived meanwhile finds its step refused and stops.
PROJECT_STEPS = {
    "cloning": Action(("pending",), "cloning"),
    "indexing": Action(("cloning", "ready"), "indexing"),
    "ready": Action(("indexing",), "ready"),
    "error": Action(("pending", "cloning", "indexing", "ready"), "error"),
}

RUN_STATUSES = ("draft", "queued", "running", "paused", "completed", "failed", "cancelled")
RUN_TERMINAL = ("completed", "failed", "cancelled")

RUN_ACTIONS = {
    "start": Action(("draft",), "queued"),
    "pause": Action(("running",), "paused"),
    "resume": Action(("paused",), "running"),
    "cancel": Action(("draft", "queued", "running", "paused"), "cancelled"),
    "retry": Action(("failed", "cancelled"), "queued"),
    # Approve or reject: the status stays; only a completed run has something to review.
    "review": Action(("completed",), None),
}

# Steps the run job takes.
RUN_STEPS = {
    "running": Action(("queued",), "running"),
    # Paused too: a pause that reached the agent only after it had finished does not undo its work.
    "completed": Action(("running", "paused"), "completed"),
    "failed": Action(("queued", "running", "paused"), "failed"),
}

# 409 slugs, in the product's words: project-not-cloneable, run-not-startable …
_ADJECTIVES = {
    "clone": "cloneable",
    "pull": "pullable",
    "index": "indexable",
    "archive": "archivable",
    "update": "editable",
    "snapshot": "snapshottable",
    "start": "startable",
    "pause": "pausable",
    "resume": "resumable",
    "cancel": "cancellable",
    "retry": "retryable",
    "review": "reviewable",
}


def transition(model, row_id, action, **values):
    """Apply `action` to row `row_id` of `model` if its status allows; True when it did.

    `values` are written in the same UPDATE. The caller commits.
    """
    statement = db.update(model).where(model.id == row_id, model.status.in_(action.allowed_from))
    if action.to is not None:
        values["status"] = action.to
    if not values:  # nothing to write: an UPDATE of the id onto itself still takes the row lock
        values = {"id": row_id}
    return db.session.execute(statement.values(**values).execution_options(synchronize_session=False)).rowcount == 1


def require(model, row, name, values=None, actions=PROJECT_ACTIONS, before_commit=None):
    """Apply the API action `name` to `row` (writing `values` too) or raise the 409 problem;
    commits and refreshes `row`. `before_commit(previous_status)` adds to the same transaction."""
    action = actions[name]
    previous = row.status
    if not transition(model, row.id, action, **(values or {})):
        db.session.rollback()
        db.session.refresh(row)
        noun = model.__name__.lower()
        raise Conflict(
            f"{model.__name__} #{row.id} is {row.status}; {name} is allowed from "
            f"{', '.join(action.allowed_from)}.",
            slug=f"{noun}-not-{_ADJECTIVES.get(name, name + 'able')}",
            title=f"{model.__name__} is not in a state that allows {name}",
            currentStatus=row.status,
            allowedFrom=list(action.allowed_from),
            **{f"{noun}Id": row.id},
        )
    if before_commit:
        before_commit(previous)
    db.session.commit()
    db.session.refresh(row)
    return row
