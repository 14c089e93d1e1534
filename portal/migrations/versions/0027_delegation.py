"""delegation: an approver hands a request over to a colleague ("I'm not the right
person"). New table delegations (who asked, the colleague's name, email and note, requested
→ confirmed or declined, by whom, and the approver the colleague became); clients gain
direct_handover (contacts may hand over without staff confirming); the approvers' status
check accepts 'delegated' (handed over: left out of every count).

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30 08:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

NAMING = {"ck": "ck_%(table_name)s_%(constraint_name)s"}
OLD = ('queued', 'invited', 'approved', 'approved_with_conditions', 'rejected', 'withdrawn')
NEW = (*OLD, 'delegated')
PENDING = sa.text("status = 'requested'")


def _status(values):
    return sa.Enum(*values, name='approver_status', native_enum=False, create_constraint=True,
                   length=32)


def _change(old, new):
    # Batch mode rebuilds the table on SQLite and alters the CHECK in place on PostgreSQL.
    with op.batch_alter_table('approvers', naming_convention=NAMING) as batch_op:
        batch_op.alter_column('status', existing_type=_status(old), type_=_status(new),
                              existing_nullable=False)


def upgrade():
    op.create_table(
        'delegations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('from_approver_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('note', sa.Text(), server_default='', nullable=False),
        sa.Column('status', sa.Enum('requested', 'confirmed', 'declined',
                                    name='delegation_status', native_enum=False,
                                    create_constraint=True, length=32), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('to_approver_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['review_requests.id'],
                                name=op.f('fk_delegations_request_id_review_requests')),
        sa.ForeignKeyConstraint(['from_approver_id'], ['approvers.id'],
                                name=op.f('fk_delegations_from_approver_id_approvers')),
        sa.ForeignKeyConstraint(['to_approver_id'], ['approvers.id'],
                                name=op.f('fk_delegations_to_approver_id_approvers')),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_delegations_decided_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delegations')),
    )
    with op.batch_alter_table('delegations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delegations_request_id'), ['request_id'])
        batch_op.create_index(batch_op.f('ix_delegations_from_approver_id'),
                              ['from_approver_id'])
        batch_op.create_index('ux_delegations_pending', ['from_approver_id'], unique=True,
                              sqlite_where=PENDING, postgresql_where=PENDING)
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direct_handover', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    _change(OLD, NEW)


def downgrade():
    # A handed-over approver reads as withdrawn: they no longer decide.
    op.execute(sa.text("UPDATE approvers SET status = 'withdrawn' WHERE status = 'delegated'"))
    _change(NEW, OLD)
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('direct_handover')
    op.drop_table('delegations')
