"""a client's comment is a point followed across versions: open, addressed in a later
version (with an optional note) or won't change (with a reason); reopened as open

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:15:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'resolution_status',
            sa.Enum('open', 'addressed', 'wont_change', name='point_status',
                    native_enum=False, create_constraint=True, length=32),
            server_default='open', nullable=False))
        batch_op.add_column(sa.Column('resolved_in_version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('resolved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_foreign_key('fk_comments_resolved_in_version_id_versions', 'versions',
                                    ['resolved_in_version_id'], ['id'])
        batch_op.create_foreign_key('fk_comments_resolved_by_id_users', 'users',
                                    ['resolved_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_comments_resolved_by_id_users', type_='foreignkey')
        batch_op.drop_constraint('fk_comments_resolved_in_version_id_versions',
                                 type_='foreignkey')
        for name in ('resolved_at', 'resolved_by_id', 'resolution_note',
                     'resolved_in_version_id', 'resolution_status'):
            batch_op.drop_column(name)
