"""Intake state: signal run ids, hold/recheck and decision reasons, issue assets, source cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_OLD_STATUS = sa.Enum('new', 'filtered', 'grouped', name='signalstatus')
_NEW_STATUS = sa.Enum('new', 'held', 'filtered', 'grouped', name='signalstatus')


def upgrade() -> None:
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('filter_rule', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('recheck_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('group_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.alter_column('status', existing_type=_OLD_STATUS, type_=_NEW_STATUS,
                              existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_signal_run_id'), ['run_id'], unique=False)
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('assets', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table('sourcestate',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('cursor', sa.JSON(), nullable=False),
    sa.Column('polled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ok_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('sourcestate')
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_column('assets')
        batch_op.drop_column('kind')
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signal_run_id'))
        batch_op.alter_column('status', existing_type=_NEW_STATUS, type_=_OLD_STATUS,
                              existing_nullable=False)
        batch_op.drop_column('group_reason')
        batch_op.drop_column('recheck_at')
        batch_op.drop_column('filter_rule')
        batch_op.drop_column('run_id')
