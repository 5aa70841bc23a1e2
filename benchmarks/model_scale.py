"""How long the model takes on a large book: training on two years of weekly history, scoring all accounts.

    .venv/bin/python benchmarks/model_scale.py [--accounts 10000] [--weeks 104] [--db PATH]

Writes a synthetic book straight into a SQLite database (accounts, a weekly accounts file, daily
active_users and logins; churn at renewal for low users), then times, through model/: reading the
history (the one rollup query), building every week's features, fitting the churn model with its
budget threshold, and scoring every account on the last day (what a daily scan adds). Peak memory is
the process's maximum resident set."""

from __future__ import annotations

import argparse
import resource
import sys
import time as timer
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.features import History  # noqa: E402
from model.labels import CHURN_HORIZON, churn_dates  # noqa: E402
from model.train import train  # noqa: E402
from storage import Database  # noqa: E402
from storage.models import Account, AccountSnapshot, Signal  # noqa: E402

START = date(2025, 1, 6)


def build(db: Database, accounts: int, weeks: int, seed: int = 1) -> date:
    rng = np.random.default_rng(seed)
    days = 7 * weeks
    level = rng.uniform(0.05, 0.95, accounts)
    seats = rng.integers(5, 60, accounts)
    renew_offset = rng.integers(0, 365, accounts)
    churn = np.full(accounts, -1)
    for a in range(accounts):
        for r in range(int(renew_offset[a]), days, 365):
            if rng.random() < 1 / (1 + np.exp((level[a] - 0.3) * 10)) * 0.6:
                churn[a] = r
                break
    now = datetime(2025, 1, 6, tzinfo=UTC)
    with db.session() as s:
        objs = []
        for a in range(accounts):
            c = int(churn[a])
            objs.append(
                {
                    "name": f"Account {a}",
                    "name_key": f"account {a}",
                    "external_id": f"X{a:05d}",
                    "plan": "Standard",
                    "seats": int(seats[a]),
                    "currency": "JPY",
                    "mrr": Decimal(int(seats[a]) * 2000),
                    "contract_start": START - timedelta(days=int(365 - renew_offset[a])),
                    "renewal_date": START + timedelta(days=int(renew_offset[a])),
                    "status": "churned" if c >= 0 else "active",
                    "churned_on": START + timedelta(days=c) if c >= 0 else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        s.execute(insert(Account), objs)
    with db.session() as s:
        ids = [
            r[0]
            for r in s.execute(Account.__table__.select().with_only_columns(Account.id).order_by(Account.id))
        ]
    for w in range(weeks):
        day = START + timedelta(days=7 * w)
        snaps = []
        for a in range(accounts):
            c = int(churn[a])
            if c >= 0 and c < 7 * w - 7:
                continue
            nxt = int(renew_offset[a]) + 365 * max(0, (7 * w - int(renew_offset[a]) + 364) // 365)
            snaps.append(
                {
                    "account_id": ids[a],
                    "as_of": day,
                    "plan": "Standard",
                    "mrr": Decimal(int(seats[a]) * 2000),
                    "seats": int(seats[a]),
                    "currency": "JPY",
                    "status": "churned" if 0 <= c <= 7 * w else "active",
                    "renewal_date": START + timedelta(days=nxt),
                }
            )
        with db.session() as s:
            s.execute(insert(AccountSnapshot), snaps)
    for t in range(days):
        day = START + timedelta(days=t)
        alive = (churn < 0) | (churn > t)
        factor = 0.95 if day.weekday() < 5 else 0.12
        active = rng.binomial(seats, np.clip(level * factor, 0, 1))
        rows = []
        for a in np.nonzero(alive)[0]:
            rows.append(
                {"day": day, "account_id": ids[a], "metric": "active_users", "value": float(active[a])}
            )
            rows.append({"day": day, "account_id": ids[a], "metric": "logins", "value": float(active[a] * 2)})
        with db.session() as s:
            s.execute(insert(Signal), rows)
    return START + timedelta(days=days - 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--db", default="/tmp/baton-model-scale.db", help="reused when it exists")
    args = ap.parse_args()
    path = Path(args.db)
    fresh = not path.exists()
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    t0 = timer.perf_counter()
    end = build(db, args.accounts, args.weeks) if fresh else START + timedelta(days=7 * args.weeks - 1)
    if fresh:
        print(f"built {args.accounts:,} accounts x {args.weeks} weeks in {timer.perf_counter() - t0:.0f} s")
    with db.session() as s:
        t1 = timer.perf_counter()
        history = History(s, end, args.weeks)
        t2 = timer.perf_counter()
        frames = [history.frame(k) for k in range(history.weeks)][::-1]
        t3 = timer.perf_counter()
        churns = churn_dates(s)
        model = train("churn", frames, churns, CHURN_HORIZON, end, budget=1.5)
        t4 = timer.perf_counter()
        scoring = History(s, end, 1)
        frame = scoring.frame(0, metrics=model.metrics, plans=model.plans)
        p = model.proba(model.matrix(frame))
        t5 = timer.perf_counter()
    rows = sum(len(f.account_ids) for f in frames)
    print(
        f"history read {t2 - t1:.1f} s, features for {len(frames)} weeks ({rows:,} account-weeks) "
        f"{t3 - t2:.1f} s, "
        f"fit + threshold {t4 - t3:.1f} s on {model.training['rows']:,} rows; training total {t4 - t1:.1f} s"
    )
    print(f"scoring {len(p):,} accounts on {end.isoformat()}: {t5 - t4:.2f} s")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
