"""Weekly rollups of the stored signals: the same weeks, and so the same features, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import insert

from model.features import History
from storage import Database
from storage.models import Account, AccountSnapshot, Signal

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ANCHOR = date(2026, 5, 31)


def _account(**over: object) -> Account:
    fields: dict[str, object] = {
        "name": "Week",
        "name_key": "week",
        "external_id": "W",
        "plan": "Standard",
        "seats": 10,
        "currency": "JPY",
        "mrr": Decimal(10_000),
        "contract_start": ANCHOR - timedelta(days=400),
        "status": "active",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Account(**{**fields, **over})


def test_a_week_before_the_first_accounts_file_takes_that_file_not_a_later_upgrade(db: Database) -> None:
    """Usage history often starts before the first accounts file. Those weeks used to take today's
    row, so an upgrade two files later showed in the weeks before it: the upsell model learnt from
    its own answer. They take the first file now, the nearest to them."""
    with db.session() as s:
        a = _account(plan="Pro", mrr=Decimal(30_000), seats=30)  # today: upgraded
        s.add(a)
        s.flush()
        for back, plan, mrr, seats in ((14, "Standard", 10_000, 10), (7, "Pro", 30_000, 30)):
            as_of = ANCHOR - timedelta(days=back)
            snap = {"plan": plan, "mrr": Decimal(mrr), "seats": seats, "currency": "JPY", "status": "active"}
            s.add(AccountSnapshot(account_id=a.id, as_of=as_of, **snap))
        day = ANCHOR - timedelta(days=28)
        s.execute(insert(Signal), [{"day": day, "account_id": a.id, "metric": "active_users", "value": 5}])
        s.flush()
        history = History(s, ANCHOR, 6)
        before, between, after = history.frame(4), history.frame(2), history.frame(0)
    assert list(before.account_ids) == [a.id] and before.plans == ["Standard"]
    assert before.column("mrr")[0] == 10_000
    assert between.plans == ["Standard"] and between.column("mrr")[0] == 10_000
    assert after.plans == ["Pro"] and after.column("mrr")[0] == 30_000


def test_each_day_falls_in_its_own_week_on_both_databases(db: Database) -> None:
    """A signal 4-6 days before the anchor is this week's. PostgreSQL's CAST(days / 7 AS INTEGER)
    divided as NUMERIC and rounded, putting those days in the week before: the model then learnt
    other features on PostgreSQL than on SQLite (a backtest AUC of 0.88 against 0.93)."""
    with db.session() as s:
        a = _account()
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


def test_each_week_takes_the_latest_accounts_file_up_to_its_day(db: Database) -> None:
    """The files are read once per history and picked per week (model/features._Snapshots): a file
    from before the oldest week still speaks for it, a cancelled status drops the account from the
    weeks it covers and not from earlier ones, zero seats are unknown, days to renewal count from
    each week's day, and an account never in a file is today's row while active."""
    with db.session() as s:
        old, gone, fresh, left = (
            _account(name=n, name_key=n.lower(), external_id=n, **over)
            for n, over in (
                ("Old", {}),
                ("Gone", {"status": "churned", "churned_on": ANCHOR - timedelta(days=3)}),
                ("Fresh", {"plan": "Pro", "seats": 0}),
                ("Left", {"status": "churned"}),
            )
        )
        s.add_all([old, gone, fresh, left])
        s.flush()
        renewal = ANCHOR + timedelta(days=30)
        files = [
            (old, 100, "Standard", 10, "active"),  # before the history's weeks: its only file
            (gone, 100, "Standard", 10, "active"),
            (gone, 10, "Standard", 0, "active"),
            (gone, 3, "Standard", 10, "cancelled"),
        ]
        for acct, back, plan, seats, status in files:
            s.add(
                AccountSnapshot(
                    account_id=acct.id,
                    as_of=ANCHOR - timedelta(days=back),
                    plan=plan,
                    mrr=Decimal(10_000),
                    seats=seats,
                    currency="JPY",
                    status=status,
                    renewal_date=renewal,
                )
            )
        s.execute(
            insert(Signal), [{"day": ANCHOR, "account_id": old.id, "metric": "active_users", "value": 5}]
        )
        s.flush()
        history = History(s, ANCHOR, 4)
        weeks = {k: history.frame(k) for k in (0, 1, 3)}
    names = {old.id: "Old", gone.id: "Gone", fresh.id: "Fresh"}
    seen = {k: [names[int(a)] for a in f.account_ids] for k, f in weeks.items()}
    assert seen == {
        0: ["Old", "Fresh"],
        1: ["Old", "Gone", "Fresh"],
        3: ["Old", "Gone", "Fresh"],
    }
    assert weeks[1].plans == ["Standard", "Standard", "Pro"]
    seats = weeks[1].column("seats")
    assert seats[0] == 10 and np.isnan(seats[1]) and np.isnan(seats[2])  # the file of day 10: 0 seats
    assert weeks[3].column("seats")[1] == 10  # the file of day 100
    assert list(weeks[1].column("days_to_renewal")[:2]) == [37, 37]
    assert np.isnan(weeks[1].column("days_to_renewal")[2])  # Fresh: no renewal on its row
