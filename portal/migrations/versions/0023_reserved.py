"""outbox and webhook rows may end "skipped": not sent because by then they were no longer
needed (a reminder whose request closed, whose approver decided or whose link was revoked
before the send job reached it); notifications/delivery.NotNeeded. The status columns are
VARCHAR with a CHECK constraint (choice_column), so only the constraints change.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

NAMING = {"ck": "ck_%(table_name)s_%(constraint_name)s"}
BEFORE = ('pending', 'sent', 'failed')
AFTER = BEFORE + ('skipped',)
COLUMNS = (('outbox_messages', 'outbox_status'), ('webhook_deliveries', 'webhook_status'))


def _status(values, name):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _change(old, new):
    # Batch mode rebuilds the table on SQLite (whose CHECK constraints cannot be altered)
    # and alters in place on PostgreSQL: the old CHECK is dropped and the new one added.
    for table, name in COLUMNS:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.alter_column('status', existing_type=_status(old, name),
                                  type_=_status(new, name), existing_nullable=False)


def upgrade():
    _change(BEFORE, AFTER)


def downgrade():
    for table, _name in COLUMNS:  # a skipped row was never sent: it reads as failed
        op.execute(sa.text(f"UPDATE {table} SET status = 'failed' WHERE status = 'skipped'"))
    _change(AFTER, BEFORE)
