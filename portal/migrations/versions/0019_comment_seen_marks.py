"""comment seen marks: per person and deliverable, the newest client comment they have
seen, so the dashboard can mark rows with client comments they have not read yet

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'comment_seen_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('deliverable_id', sa.Integer(), nullable=False),
        sa.Column('comment_id', sa.Integer(), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['comment_id'], ['comments.id'],
                                name=op.f('fk_comment_seen_marks_comment_id_comments')),
        sa.ForeignKeyConstraint(['deliverable_id'], ['deliverables.id'],
                                name=op.f('fk_comment_seen_marks_deliverable_id_deliverables')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_comment_seen_marks_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_comment_seen_marks')),
        sa.UniqueConstraint('user_id', 'deliverable_id',
                            name=op.f('uq_comment_seen_marks_user_id_deliverable_id')),
    )


def downgrade():
    op.drop_table('comment_seen_marks')
