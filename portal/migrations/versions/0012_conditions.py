"""conditions of an approval as tracked items (open, met in a later version, won't do)

An approval with conditions kept them as one text in decisions.text; each such text
becomes that decision's first (open) condition, and the decision's text is left as its
note (empty). The downgrade puts them back as one text (their resolutions are lost).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade():
    op.create_table(
        'conditions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('decision_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('status', sa.Enum('open', 'met', 'wont_do', name='condition_status',
                                    native_enum=False, create_constraint=True, length=32),
                  server_default='open', nullable=False),
        sa.Column('resolved_in_version_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), server_default='', nullable=False),
        sa.Column('resolved_by_id', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], ),
        sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], ),
        sa.ForeignKeyConstraint(['resolved_in_version_id'], ['versions.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('decision_id', 'position'),
    )
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.create_index('ix_conditions_open', ['decision_id'], unique=False,
                              postgresql_where=OPEN, sqlite_where=OPEN)
    op.execute(
        "INSERT INTO conditions (decision_id, position, text, status, note) "
        "SELECT id, 1, text, 'open', '' FROM decisions "
        "WHERE outcome = 'approved_with_conditions' AND text <> ''")
    op.execute(
        "UPDATE decisions SET text = '' WHERE id IN (SELECT decision_id FROM conditions)")


def downgrade():
    bind = op.get_bind()
    texts = {}
    for decision_id, text in bind.execute(sa.text(
            "SELECT decision_id, text FROM conditions ORDER BY decision_id, position")):
        texts.setdefault(decision_id, []).append(text)
    for decision_id, items in texts.items():
        bind.execute(sa.text(
            "UPDATE decisions SET text = CASE WHEN text = '' THEN :conditions "
            "ELSE :conditions || '\n' || text END WHERE id = :id"),
            {"conditions": "\n".join(items), "id": decision_id})
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.drop_index('ix_conditions_open', postgresql_where=OPEN, sqlite_where=OPEN)
    op.drop_table('conditions')
