"""models: trained churn/upsell models as numbers; account_snapshots.renewal_date for model features

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("trained_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data_through", sa.Date(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("budget", sa.Double(), nullable=True),
        sa.Column("backtest", sa.JSON(), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "version", name="uq_models_kind_version"),
    )
    with op.batch_alter_table("account_snapshots") as batch:
        batch.add_column(sa.Column("renewal_date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_snapshots") as batch:
        batch.drop_column("renewal_date")
    op.drop_table("models")
