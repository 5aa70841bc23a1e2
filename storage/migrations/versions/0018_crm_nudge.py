"""crm_deals.nudged_at: when the owner of a won deal with no handoff yet was nudged (once)

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crm_deals") as batch:
        batch.add_column(sa.Column("nudged_at", storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_deals") as batch:
        batch.drop_column("nudged_at")
