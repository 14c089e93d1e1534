"""step-up: one-time decision codes, per-request and per-client settings, how a decision
was identified

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'decision_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('approver_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('tries', sa.Integer(), server_default='0', nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['approver_id'], ['approvers.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('decision_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_codes_approver_id'), ['approver_id'],
                              unique=False)
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_code_default', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('require_code', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'identity', sa.Enum('link', 'email_code', name='identity_check', native_enum=False,
                                create_constraint=True, length=32),
            server_default='link', nullable=False))


def downgrade():
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('identity')
    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.drop_column('require_code')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('require_code_default')
    with op.batch_alter_table('decision_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_codes_approver_id'))
    op.drop_table('decision_codes')
