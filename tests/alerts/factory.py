"""Small, explicit data sets for health and alert tests: accounts and daily signals on a fixed calendar."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta

from ingest import ingest_accounts, ingest_signals, records
from storage import Database
from tests.clocks import FakeClock

AS_OF = date(2026, 11, 22)


def accounts(
    db: Database, *rows: tuple[str, int, str], renewal: str = "2027-10-01", as_of: date = AS_OF
) -> None:
    """rows: (account_id, seats, plan)."""
    text = "account_id,name,plan,mrr,seats,contract_start,renewal_date\n" + "".join(
        f"{ext},Account {ext},{plan},100000,{seats},2026-01-01,{renewal}\n" for ext, seats, plan in rows
    )
    with db.session() as s:
        ingest_accounts(s, records(io.StringIO(text), "csv"), as_of=as_of, now=FakeClock()())


def daily(
    db: Database,
    ext: str,
    metric: str,
    value: Callable[[int], float | None],
    days: int = 35,
    as_of: date = AS_OF,
) -> None:
    """One value per day for the ``days`` days up to ``as_of``; ``value(n)`` gets n = days before as_of
    (0 = as_of itself) and returns None to send nothing that day."""
    lines = ["account_id,date,metric,value"]
    for n in range(days - 1, -1, -1):
        v = value(n)
        if v is not None:
            lines.append(f"{ext},{(as_of - timedelta(days=n)).isoformat()},{metric},{v}")
    with db.session() as s:
        ingest_signals(s, records(io.StringIO("\n".join(lines) + "\n"), "csv"))
