"""account_undo: accounts files applied in short transactions like signals, undone after a crash

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_undo",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("old_account", sa.JSON(), nullable=True),
        sa.Column("old_snapshot", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["data_imports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("import_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("account_undo")
