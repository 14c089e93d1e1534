"""on behalf: decisions_on_behalf (a decision the contact gave by phone, in a meeting … and
staff recorded: who, how, when, the note, optional evidence), and the decisions' identity
check accepts 'on_behalf'

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-30 08:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

OLD = ('link', 'email_code')
NEW = ('link', 'email_code', 'on_behalf')


def _identity(values):
    return sa.Enum(*values, name='identity_check', native_enum=False, create_constraint=True,
                   length=32)


def upgrade():
    op.create_table(
        'decisions_on_behalf',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('decision_id', sa.Integer(), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.Enum('phone', 'meeting', 'email', 'other',
                                     name='on_behalf_channel', native_enum=False,
                                     create_constraint=True, length=32), nullable=False),
        sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('evidence_key', sa.String(length=64), nullable=True),
        sa.Column('evidence_name', sa.String(length=255), nullable=True),
        sa.Column('evidence_type', sa.String(length=100), nullable=True),
        sa.Column('evidence_size', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['decision_id'], ['decisions.id']),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('decision_id'),
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.alter_column('identity', existing_type=_identity(OLD), type_=_identity(NEW),
                              existing_nullable=False, existing_server_default='link')


def downgrade():
    # Decisions recorded on behalf cannot be said in the old words: they must be gone.
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.alter_column('identity', existing_type=_identity(NEW), type_=_identity(OLD),
                              existing_nullable=False, existing_server_default='link')
    op.drop_table('decisions_on_behalf')
