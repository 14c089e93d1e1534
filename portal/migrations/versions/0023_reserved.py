"""mail sending (reserved for the mail work)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
