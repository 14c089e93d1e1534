"""dashboard sections: one partial index per section, in its order, carrying the owner and
reviewer so a person's own rows ("mine") are picked from the index alone (bench/dashboard.py
at 1M deliverables)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

# As in portal/models/work.py BOARD_INDEXES (a migration keeps its own copy).
INDEXES = [
    ('overdue', "state = 'delivered'", ['due_date', 'id']),
    ('rejected', "state = 'changes_requested'", ['last_activity_at', 'id']),
    ('in_review', "state = 'in_review'", ['last_activity_at', 'id']),
    ('to_move', "state IN ('draft', 'ready')", ['last_activity_at', 'id']),
    ('approved', "state IN ('approved', 'approved_with_conditions')",
     ['last_activity_at', 'id']),
]


def upgrade():
    with op.batch_alter_table('deliverables', schema=None) as batch_op:
        for name, where, columns in INDEXES:
            batch_op.create_index(f'ix_deliverables_board_{name}', columns, unique=False,
                                  postgresql_where=sa.text(where), sqlite_where=sa.text(where),
                                  postgresql_include=['owner_id', 'reviewer_id'])


def downgrade():
    with op.batch_alter_table('deliverables', schema=None) as batch_op:
        for name, _, _ in reversed(INDEXES):
            batch_op.drop_index(f'ix_deliverables_board_{name}')
