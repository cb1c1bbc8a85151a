"""Upgrading a SQLite database that holds data: batch migrations rebuild tables (copy, drop,
rename), and with foreign keys enforced (runner.extensions) dropping `runs` would run its
children's ON DELETE CASCADE. The migrations turn enforcement off while they run, check the result,
and turn it back on. (PostgreSQL alters tables in place; the suite migrates it at every session.)"""
import sqlite3

from flask_migrate import upgrade

from runner import create_app
from runner import config as runner_config

NOW = "2026-11-24 00:00:00.000000"


def test_upgrading_a_sqlite_database_keeps_every_row_and_enforces_foreign_keys(tmp_path):
    config = runner_config.TestConfig()
    config.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'runner.db'}"
    config.DATA_DIR = str(tmp_path / "data")
    app = create_app(config)
    with app.app_context():
        upgrade(revision="0004")  # before 0005 rebuilds runs and agent_events
    db = sqlite3.connect(tmp_path / "runner.db", isolation_level=None)
    db.executescript(f"""
        INSERT INTO users (id, email, name, password_hash, is_admin, created_at, updated_at)
            VALUES (1, 'a@example.com', 'A', 'x', 0, '{NOW}', '{NOW}');
        INSERT INTO projects (id, owner_id, name, description, repository_url, status, created_at, updated_at)
            VALUES (1, 1, 'p', '', 'https://example.com/r.git', 'ready', '{NOW}', '{NOW}');
        INSERT INTO runs (id, project_id, user_id, title, prompt, selected_agent, rag_enabled, safe_mode, status,
                          attempt, created_at, updated_at)
            VALUES (1, 1, 1, 't', 'p', 'command', 0, 0, 'completed', 1, '{NOW}', '{NOW}');
        INSERT INTO agent_events (run_id, event_type, severity, message, data, created_at)
            VALUES (1, 'log', 'info', 'kept', '{{}}', '{NOW}');
    """)
    with app.app_context():
        upgrade()
    assert db.execute("SELECT message FROM agent_events WHERE run_id = 1").fetchall() == [("kept",)]
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    db.close()

    with app.app_context():  # the app's own connections enforce foreign keys
        from runner.extensions import db as sqla

        with sqla.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            connection.exec_driver_sql("DELETE FROM runs WHERE id = 1")  # ON DELETE CASCADE acts
            assert connection.exec_driver_sql("SELECT count(*) FROM agent_events").scalar() == 0
            connection.rollback()
        sqla.engine.dispose()
    app.extensions["runner-redis"].connection_pool.disconnect()
