"""no change: a slot reserved for review-page indexes, which the page turned out not to need
(its statements all use existing keys); kept so the revision chain stays as deployed

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
