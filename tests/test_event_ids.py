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


def test_a_runs_events_become_visible_in_id_order(app, user_api):
    """Streams send "events after the last id sent": a later id of a run must never be visible
    before an earlier one, or a stream would skip the earlier one forever. Two writers of one run:
    the second waits for the first to commit."""
    import threading

    from runner import events

    run_id = bare_run(app, user_api.email)
    second_done = threading.Event()

    def second_writer():
        with app.app_context():
            events.add(run_id, "log", "second")
            db.session.commit()
        second_done.set()

    with app.app_context():
        first = events.add(run_id, "log", "first")
        db.session.flush()  # its id is taken; not committed yet
        writer = threading.Thread(target=second_writer)
        writer.start()
        second_done.wait(1.0)  # long enough for an unordered writer to commit
        with app.app_context():  # another session: what a stream would read now
            visible = db.session.scalars(
                db.select(AgentEvent.message).where(AgentEvent.run_id == run_id, AgentEvent.id > first.id)
            ).all()
            db.session.remove()
        assert visible == [], "a later event of the run became visible before an earlier one"
        db.session.commit()
        first_id = first.id
    writer.join(10)
    assert second_done.is_set()
    with app.app_context():
        rows = db.session.execute(
            db.select(AgentEvent.id, AgentEvent.message)
            .where(AgentEvent.run_id == run_id, AgentEvent.message.in_(("first", "second")))
            .order_by(AgentEvent.id)
        ).all()
    assert [message for _, message in rows] == ["first", "second"]
    assert rows[0].id == first_id
