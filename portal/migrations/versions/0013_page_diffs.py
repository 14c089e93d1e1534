"""page_diffs: the compare view's pixel difference of two page images, computed once

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'page_diffs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('a_key', sa.String(length=64), nullable=False),
        sa.Column('b_key', sa.String(length=64), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('changed_pixels', sa.Integer(), nullable=False),
        sa.Column('regions', sa.Text(), nullable=False),
        sa.Column('overlay_key', sa.String(length=64), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_page_diffs')),
        sa.UniqueConstraint('a_key', 'b_key', name=op.f('uq_page_diffs_a_key_b_key')),
    )


def downgrade():
    op.drop_table('page_diffs')
