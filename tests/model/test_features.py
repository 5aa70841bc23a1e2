"""Weekly rollups of the stored signals: the same weeks, and so the same features, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from model.features import History
from storage import Database
from storage.models import Account, Signal

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ANCHOR = date(2026, 5, 31)


def test_each_day_falls_in_its_own_week_on_both_databases(db: Database) -> None:
    """A signal 4-6 days before the anchor is this week's. PostgreSQL's CAST(days / 7 AS INTEGER)
    divided as NUMERIC and rounded, putting those days in the week before: the model then learnt
    other features on PostgreSQL than on SQLite (a backtest AUC of 0.88 against 0.93)."""
    with db.session() as s:
        a = Account(
            name="Week",
            name_key="week",
            external_id="W",
            plan="Standard",
            seats=10,
            currency="JPY",
            mrr=Decimal(10_000),
            contract_start=ANCHOR - timedelta(days=400),
            status="active",
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(a)
        s.flush()
        # day k before the anchor carries 2**k: each week's sum says exactly which days it holds
        rows = [
            {"day": ANCHOR - timedelta(days=k), "account_id": a.id, "metric": "active_users", "value": 2**k}
            for k in range(21)
        ]
        s.execute(insert(Signal), rows)
        s.flush()
        history = History(s, ANCHOR, 1)
        sums = history.sums["active_users"][history.index[a.id]]
    assert sums[0] == sum(2**k for k in range(7))
    assert sums[1] == sum(2**k for k in range(7, 14))
    assert sums[2] == sum(2**k for k in range(14, 21))
