"""the agency's identity (name, sender name, accent colour, logo): one row clients see on
pages, emails and certificates

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'agency_profile',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('sender_name', sa.String(length=120), server_default='', nullable=False),
        sa.Column('accent', sa.String(length=7), nullable=False),
        sa.Column('logo', sa.LargeBinary(), nullable=True),
        sa.Column('logo_type', sa.String(length=32), nullable=True),
        sa.Column('logo_sha256', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name='ck_agency_profile_single_row'),
        sa.CheckConstraint("logo_type IN ('image/png', 'image/svg+xml') OR logo_type IS NULL",
                           name='ck_agency_profile_logo_type'),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade():
    op.drop_table('agency_profile')
