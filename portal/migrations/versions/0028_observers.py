"""observers: reserved slot (filled by the observers work)

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30 08:45:00.000000

"""

# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
