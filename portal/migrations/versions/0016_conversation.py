"""conversation in minutes: a comment is notified to the other side (not digested daily);
a partial index holds only what is still to send

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# As each dialect writes `~Comment.internal`, so the planner uses the index.
TO_NOTIFY_PG = sa.text("notified_at IS NULL AND NOT internal")
TO_NOTIFY_SQLITE = sa.text("notified_at IS NULL AND internal = 0")


def upgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_digested_at')
        batch_op.alter_column('digested_at', new_column_name='notified_at',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)
    # Staff replies were never sent to clients before; the first sweep must not send the
    # whole history now. Clients' comments still waiting for the digest go out as before.
    op.execute("UPDATE comments SET notified_at = created_at "
               "WHERE notified_at IS NULL AND author_contact_id IS NULL")
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index('ix_comments_to_notify', ['created_at'], unique=False,
                              postgresql_where=TO_NOTIFY_PG,
                              sqlite_where=TO_NOTIFY_SQLITE)


def downgrade():
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_to_notify', postgresql_where=TO_NOTIFY_PG,
                            sqlite_where=TO_NOTIFY_SQLITE)
        batch_op.alter_column('notified_at', new_column_name='digested_at',
                              existing_type=sa.DateTime(timezone=True), existing_nullable=True)
        batch_op.create_index('ix_comments_digested_at', ['digested_at'], unique=False)
