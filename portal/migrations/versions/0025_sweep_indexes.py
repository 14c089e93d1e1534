"""approvers loses ix_approvers_request_id: the unique (request_id, contact_id) index
already answers every lookup by request_id (its leading column), and an approver's
reminder update is never HOT (it moves next_reminder_at, which ix_approvers_due holds),
so each index costs one more entry written per reminder sent

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 06:30:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('approvers', schema=None) as batch_op:
        batch_op.drop_index('ix_approvers_request_id')


def downgrade():
    with op.batch_alter_table('approvers', schema=None) as batch_op:
        batch_op.create_index('ix_approvers_request_id', ['request_id'], unique=False)
