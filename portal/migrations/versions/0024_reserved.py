"""approval policies beyond parallel and sequential (reserved for the policies work)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 05:30:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
