"""tasks and reminders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 13:35:30

A task is assigned to a user with a due time, optionally about one customer (its note
sealed with that customer's key); generated tasks carry the key of what they came from,
unique per customer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.data.base

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tasks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('assignee_id', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('note', sa.LargeBinary(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_key', sa.String(length=128), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('signal', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', server.data.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('snoozed_until', server.data.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('done_at', server.data.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', server.data.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('updated_at', server.data.base.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tasks_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('customer_id', 'source_key', name=op.f('uq_tasks_customer_id'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_action'), ['action'], unique=False)
        batch_op.create_index('ix_tasks_assignee_status_due', ['assignee_id', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_tasks_team_status_due', ['team', 'status', 'due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_team_status_due')
        batch_op.drop_index(batch_op.f('ix_tasks_customer_id'))
        batch_op.drop_index('ix_tasks_assignee_status_due')
        batch_op.drop_index(batch_op.f('ix_tasks_action'))

    op.drop_table('tasks')
