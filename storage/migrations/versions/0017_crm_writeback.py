"""crm_writebacks and crm_inbox: the CRM ids of what Baton wrote back per handoff, and deal ids a
HubSpot webhook named, waiting for the next CRM pass

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_writebacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("crm", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("attempted_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("written_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handoff_id", "crm", "kind", name="uq_crm_writebacks_kind"),
    )
    op.create_index("ix_crm_writebacks_handoff_id", "crm_writebacks", ["handoff_id"])
    op.create_table(
        "crm_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crm", sa.String(length=16), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_crm_inbox_done_at", "crm_inbox", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_crm_inbox_done_at", table_name="crm_inbox")
    op.drop_table("crm_inbox")
    op.drop_index("ix_crm_writebacks_handoff_id", table_name="crm_writebacks")
    op.drop_table("crm_writebacks")
