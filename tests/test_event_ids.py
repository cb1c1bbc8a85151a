"""Agent event ids are SSE ids: they only grow, even across deleted rows, on both databases."""
from helpers import add_events, bare_run
from runner.extensions import db
from runner.models import AgentEvent, Run


def _max_event_id(app):
    with app.app_context():
        return db.session.scalar(db.select(db.func.max(AgentEvent.id)))


def test_ids_of_deleted_events_and_runs_are_never_reused(app, user_api):
    first_run = bare_run(app, user_api.email)
    add_events(app, first_run, "a", "b")
    highest = _max_event_id(app)
    with app.app_context():
        db.session.execute(db.delete(AgentEvent))
        db.session.execute(db.delete(Run))
        db.session.commit()
    second_run = bare_run(app, user_api.email)
    add_events(app, second_run, "c")
    assert second_run > first_run
    with app.app_context():
        new_ids = db.session.scalars(db.select(AgentEvent.id).where(AgentEvent.run_id == second_run)).all()
    assert min(new_ids) > highest
