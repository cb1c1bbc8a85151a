"""The code search index of projects: when it was built, at which commit, how many files and chunks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 03:03:35.255434

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('indexed_commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('index_chunks', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('index_files', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('index_files')
        batch_op.drop_column('index_chunks')
        batch_op.drop_column('indexed_commit')
        batch_op.drop_column('indexed_at')
