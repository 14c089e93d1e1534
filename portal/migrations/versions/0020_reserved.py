"""outbox messages rendered by the send job: a row may name its template and a JSON
context instead of carrying rendered text (the set-based reminder sweep writes them so;
notifications/deferred.py renders them once, when they are sent)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deferred_template', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('deferred_context', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('deferred_context')
        batch_op.drop_column('deferred_template')
