"""crm_deals and crm_cursors: won deals taken from HubSpot / Salesforce once, and the poll watermarks

Revision ID: 0016
Revises: 0014 (written on a branch without 0015; the merger re-points it at 0015)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crm", sa.String(length=16), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("deal", sa.JSON(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=True),
        sa.Column("found_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("announced_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("crm", "deal_id", name="uq_crm_deals_crm_deal"),
    )
    op.create_table(
        "crm_cursors",
        sa.Column("crm", sa.String(length=16), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("watermark", sa.String(length=64), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "stream"),
    )


def downgrade() -> None:
    op.drop_table("crm_cursors")
    op.drop_table("crm_deals")
