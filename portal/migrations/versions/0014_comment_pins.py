"""comments remember the version they were made on and can be pinned to a spot on a page

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 23:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('page', sa.Integer(), nullable=True))
        for name in ('x', 'y', 'w', 'h'):
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch_op.create_foreign_key('fk_comments_version_id_versions', 'versions',
                                    ['version_id'], ['id'])
    # Comments made before this were made on their request's version.
    op.execute("UPDATE comments SET version_id = (SELECT version_id FROM review_requests "
               "WHERE review_requests.id = comments.request_id)")


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_comments_version_id_versions', type_='foreignkey')
        for name in ('h', 'w', 'y', 'x', 'page', 'version_id'):
            batch_op.drop_column(name)
