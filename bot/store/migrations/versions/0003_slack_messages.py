"""Slack: the messages the bot posted (so a restart never reposts) and the deliveries it acted on
(so Slack's retries and double clicks act once).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('slackmessage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('investigation_id', sa.Integer(), nullable=True),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['investigation_id'], ['investigation.id'], ),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('slackmessage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slackmessage_ts'), ['ts'], unique=False)
        batch_op.create_index(batch_op.f('ix_slackmessage_issue_id'), ['issue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_slackmessage_investigation_id'),
                              ['investigation_id'], unique=False)
    op.create_table('slackevent',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('slackevent')
    with op.batch_alter_table('slackmessage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slackmessage_investigation_id'))
        batch_op.drop_index(batch_op.f('ix_slackmessage_issue_id'))
        batch_op.drop_index(batch_op.f('ix_slackmessage_ts'))
    op.drop_table('slackmessage')
