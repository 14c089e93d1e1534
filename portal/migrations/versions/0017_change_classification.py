"""staff classify requested changes (within scope or a change request) with who, when and
an optional note; decisions.scope keeps the values clients chose before this

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('classified_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('classified_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('classification_note', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.create_foreign_key('fk_decisions_classified_by_id_users', 'users',
                                    ['classified_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_decisions_classified_by_id_users', type_='foreignkey')
        for name in ('classification_note', 'classified_at', 'classified_by_id'):
            batch_op.drop_column(name)
