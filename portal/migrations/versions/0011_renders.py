"""renders: each version's pages as images (display and thumbnail) with their text

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PENDING_ONLY = sa.text("status = 'pending'")


def upgrade():
    op.create_table(
        'version_renders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('pending', 'ready', 'failed', 'no_preview',
                                    name='render_status', native_enum=False,
                                    create_constraint=True, length=32), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('page_count', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['version_id'], ['versions.id'],
                                name=op.f('fk_version_renders_version_id_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_version_renders')),
        sa.UniqueConstraint('version_id', name=op.f('uq_version_renders_version_id')),
    )
    with op.batch_alter_table('version_renders', schema=None) as batch_op:
        batch_op.create_index('ix_version_renders_pending', ['requested_at'], unique=False,
                              postgresql_where=PENDING_ONLY, sqlite_where=PENDING_ONLY)
    op.create_table(
        'page_renders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('thumb_width', sa.Integer(), nullable=False),
        sa.Column('thumb_height', sa.Integer(), nullable=False),
        sa.Column('display_key', sa.String(length=64), nullable=False),
        sa.Column('thumb_key', sa.String(length=64), nullable=False),
        sa.Column('media_type', sa.String(length=32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['version_id'], ['versions.id'],
                                name=op.f('fk_page_renders_version_id_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_page_renders')),
        sa.UniqueConstraint('version_id', 'number', name=op.f('uq_page_renders_version_id_number')),
    )


def downgrade():
    op.drop_table('page_renders')
    with op.batch_alter_table('version_renders', schema=None) as batch_op:
        batch_op.drop_index('ix_version_renders_pending', postgresql_where=PENDING_ONLY,
                            sqlite_where=PENDING_ONLY)
    op.drop_table('version_renders')
