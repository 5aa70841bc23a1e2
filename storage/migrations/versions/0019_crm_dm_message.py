"""crm_deals.dm_channel, dm_ts: where the won deal's "Start handoff" DM was posted, so it can be
edited to "handoff started" (and lose its button) once the handoff is submitted

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crm_deals") as batch:
        batch.add_column(sa.Column("dm_channel", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("dm_ts", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crm_deals") as batch:
        batch.drop_column("dm_ts")
        batch.drop_column("dm_channel")
