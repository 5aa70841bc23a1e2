"""ix_signals_nps: a partial index of the NPS answers, which the features and health read among
millions of usage rows

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    where = sa.text("metric = 'nps'")
    op.create_index(
        "ix_signals_nps", "signals", ["day", "account_id"], sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index("ix_signals_nps", table_name="signals")
