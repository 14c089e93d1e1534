"""on behalf: reserved slot (filled by the on behalf work)

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30 08:45:00.000000

"""

# revision identifiers, used by Alembic.
revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
