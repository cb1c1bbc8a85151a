"""Run reviews, APNs notifications, and the commit and push shas of runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 02:55:07.016290

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('run_status', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('apns_id', sa.String(length=64), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_notifications_device_id_devices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_notifications_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_device_id'), ['device_id'], unique=False)
        batch_op.create_index('ix_notifications_run_id_device_id', ['run_id', 'device_id'], unique=False)

    op.create_table('run_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_reviews_run_id_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_run_reviews_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_reviews'))
    )
    with op.batch_alter_table('run_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_run_reviews_run_id_id', ['run_id', 'id'], unique=False)

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commit_sha', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pushed_sha', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Dropping columns recreates the table on SQLite: keep its AUTOINCREMENT (0005).
    with op.batch_alter_table('runs', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('pushed_at')
        batch_op.drop_column('pushed_sha')
        batch_op.drop_column('commit_sha')

    with op.batch_alter_table('run_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_run_reviews_run_id_id')

    op.drop_table('run_reviews')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_run_id_device_id')
        batch_op.drop_index(batch_op.f('ix_notifications_device_id'))

    op.drop_table('notifications')
