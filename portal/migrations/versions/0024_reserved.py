"""approval policies "any one of" and "at least K of N": review_requests gains
required_approvals (K; NULL means every approver) and changes_end_request, and its policy
check accepts 'any_one' and 'at_least'

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

OLD = ('parallel', 'sequential')
NEW = ('parallel', 'sequential', 'any_one', 'at_least')


def _policy(values):
    return sa.Enum(*values, name='policy', native_enum=False, create_constraint=True, length=32)


def upgrade():
    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('required_approvals', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('changes_end_request', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.alter_column('policy', existing_type=_policy(OLD), type_=_policy(NEW),
                              existing_nullable=False)


def downgrade():
    # Requests under the new policies cannot be said in the old words: they must be gone.
    with op.batch_alter_table('review_requests', schema=None) as batch_op:
        batch_op.alter_column('policy', existing_type=_policy(NEW), type_=_policy(OLD),
                              existing_nullable=False)
        batch_op.drop_column('changes_end_request')
        batch_op.drop_column('required_approvals')
