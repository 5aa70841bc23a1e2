"""slack_user_emails: csm_email -> Slack user, cached with when it was looked up

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_user_emails",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("looked_up_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("email"),
    )
    op.create_index("ix_slack_user_emails_user_id", "slack_user_emails", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_slack_user_emails_user_id", table_name="slack_user_emails")
    op.drop_table("slack_user_emails")
