"""outbox.handoff_id: handoff cards, notes and DMs go through the outbox too

Revision ID: 0012
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handoff_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_outbox_handoff_id", ["handoff_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_outbox_handoff_id_handoffs", "handoffs", ["handoff_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_handoff_id_handoffs", type_="foreignkey")
        batch_op.drop_index("ix_outbox_handoff_id")
        batch_op.drop_column("handoff_id")
