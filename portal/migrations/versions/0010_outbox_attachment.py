"""an outbox email names the certificate it carries (attached from the store at send time)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment_certificate_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_outbox_messages_attachment_certificate_id_certificates',
                                    'certificates', ['attachment_certificate_id'], ['id'])


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_messages_attachment_certificate_id_certificates',
                                 type_='foreignkey')
        batch_op.drop_column('attachment_certificate_id')
