"""Run and agent event ids never reused on SQLite (AUTOINCREMENT); PostgreSQL sequences already never are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 02:30:00

"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ("runs", "agent_events")


def _recreate(autoincrement):
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade():
    _recreate(True)


def downgrade():
    _recreate(False)
