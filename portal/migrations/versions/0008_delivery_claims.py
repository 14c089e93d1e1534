"""delivery claims: an attempt is under way until claimed_until (no lock held while sending)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('outbox_messages', 'webhook_deliveries'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True),
                                          nullable=True))


def downgrade():
    for table in ('webhook_deliveries', 'outbox_messages'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('claimed_until')
