"""observers: contacts a request keeps informed (CC), who may look and, when staff allow
it, comment, but never decide; apart from the approvers, with links of their own

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30 08:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'observers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('link_generation', sa.Integer(), nullable=False),
        sa.Column('link_expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('link_revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('may_comment', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('added_by_id', sa.Integer(), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_viewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['added_by_id'], ['users.id'],
                                name=op.f('fk_observers_added_by_id_users')),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_observers_contact_id_contacts')),
        sa.ForeignKeyConstraint(['request_id'], ['review_requests.id'],
                                name=op.f('fk_observers_request_id_review_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_observers')),
        sa.UniqueConstraint('public_id', name=op.f('uq_observers_public_id')),
        sa.UniqueConstraint('request_id', 'contact_id',
                            name=op.f('uq_observers_request_id_contact_id')),
    )
    with op.batch_alter_table('observers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observers_contact_id'), ['contact_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('observers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observers_contact_id'))
    op.drop_table('observers')
