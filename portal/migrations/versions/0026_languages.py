"""languages: users, clients, contacts and approvers gain a nullable language code (None
falls back: approver → contact → client → the portal's)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 08:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

TABLES = ('users', 'clients', 'contacts', 'approvers')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('language')
