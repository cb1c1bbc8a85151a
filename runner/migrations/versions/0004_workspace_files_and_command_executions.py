"""Workspace files and command executions of runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 01:51:03.686591

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('command_executions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tool_id', sa.String(length=200), nullable=True),
    sa.Column('command', sa.Text(), nullable=False),
    sa.Column('cwd', sa.String(length=1024), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('stdout_path', sa.String(length=1024), nullable=True),
    sa.Column('stderr_path', sa.String(length=1024), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_command_executions_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_command_executions'))
    )
    with op.batch_alter_table('command_executions', schema=None) as batch_op:
        batch_op.create_index('ix_command_executions_run_id_tool_id', ['run_id', 'tool_id'], unique=False)

    op.create_table('workspace_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('change_type', sa.String(length=16), nullable=False),
    sa.Column('old_path', sa.String(length=1024), nullable=True),
    sa.Column('additions', sa.Integer(), nullable=True),
    sa.Column('deletions', sa.Integer(), nullable=True),
    sa.Column('binary', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_workspace_files_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workspace_files')),
    sa.UniqueConstraint('run_id', 'path', name='uq_workspace_files_run_id_path')
    )


def downgrade():
    op.drop_table('workspace_files')
    with op.batch_alter_table('command_executions', schema=None) as batch_op:
        batch_op.drop_index('ix_command_executions_run_id_tool_id')

    op.drop_table('command_executions')
