"""A small book whose answer is known: churn follows the level of use (active users per seat), never its
noise. Written straight into the tables (one accounts file, daily signals) so a test builds it in a second."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy.orm import Session

from storage import Database
from storage.models import Account, AccountSnapshot, Signal

START = date(2026, 1, 5)  # a Monday
NOW = datetime(2026, 1, 5, tzinfo=UTC)


UPGRADE_BAND = (0.45, 0.7)  # share of seats in use on a workday


@dataclass
class Book:
    end: date  # the last day with signals (a Sunday)
    ids: dict[str, int]  # external id -> Account.id
    churned: dict[str, date]


def build(
    db: Database,
    *,
    accounts: int = 120,
    weeks: int = 34,
    seed: int = 7,
    probes: bool = True,
    upgrades: bool = False,
) -> Book:
    """``accounts`` customers on 20 seats each. Each has a level of use (a share of seats active on a
    workday) and a noise level; low users churn with high odds after week 6, high users seldom. With
    ``probes``: QUIET (steady 2 of 20 seats, never churns) and NOISY (about 16 of 20, swinging wildly
    from week to week, never churns). With ``upgrades``: most accounts using a middling share of their
    seats (UPGRADE_BAND) upgrade once (a second accounts file with a higher MRR), the others never: a
    band no straight line through the features can draw, so gradient boosting ranks upgrades better
    than the regression (the churn side and the signals are those of the same book without them)."""
    plan = _plan(accounts, weeks, seed, probes)
    days, end = plan.days, START + timedelta(days=plan.days - 1)
    ext, levels, churns = plan.ext, plan.levels, plan.churns
    ids: dict[str, int] = {}
    churned: dict[str, date] = {}
    with db.session() as s:
        for n, e in enumerate(ext):
            c = churns[n]
            churned_on = START + timedelta(days=int(c)) if c >= 0 else None
            a = Account(
                name=f"Account {e}",
                name_key=f"account {e.lower()}",
                external_id=e,
                plan="Standard",
                seats=20,
                currency="JPY",
                mrr=Decimal(100_000),
                contract_start=START - timedelta(days=400),
                renewal_date=START + timedelta(days=300),
                status="churned" if churned_on else "active",
                churned_on=churned_on,
                created_at=NOW,
                updated_at=NOW,
            )
            s.add(a)
            s.flush()
            ids[e] = a.id
            if churned_on:
                churned[e] = churned_on
            s.add(
                AccountSnapshot(
                    account_id=a.id,
                    as_of=START,
                    plan="Standard",
                    mrr=Decimal(100_000),
                    seats=20,
                    currency="JPY",
                    status="active",
                    renewal_date=START + timedelta(days=300),
                )
            )
        if upgrades:
            _upgrades(s, ids, ext, levels, churns, days, seed)
        id_of = [ids[e] for e in ext]
        rows = [(day, id_of[n], metric, value) for day, n, metric, value in plan.signals]
        _insert_signals(s, rows)
    return Book(end, ids, churned)


def _insert_signals(s: Session, rows: list[tuple[date, int, str, float]]) -> None:
    """Straight through the driver: PostgreSQL by COPY (executemany there is a round trip a row),
    SQLite by its own executemany, a loop in C (Core's insert() built each row's parameters in Python,
    half a build's time). Dates go in as SQLAlchemy writes them to SQLite: ISO text."""
    raw = s.connection().connection.dbapi_connection
    target = f"{Signal.__tablename__} (day, account_id, metric, value)"
    if s.get_bind().dialect.name != "postgresql":
        raw.executemany(
            f"INSERT INTO {target} VALUES (?, ?, ?, ?)",
            [(d.isoformat(), a, m, float(v)) for d, a, m, v in rows],
        )
        return
    with raw.cursor() as cur, cur.copy(f"COPY {target} FROM STDIN") as copy:
        for r in rows:
            copy.write_row(r)


@dataclass(frozen=True)
class _Plan:
    """A book's draws: the same for the same arguments, so each worker draws each book once."""

    days: int
    ext: list[str]
    levels: list[float]
    noises: list[float]
    churns: list[int]  # day of the book each account churns on, -1 for never
    signals: list[tuple[date, int, str, int]]  # (day, account's place in ext, metric, value)


@functools.cache
def _plan(accounts: int, weeks: int, seed: int, probes: bool) -> _Plan:
    rng = np.random.default_rng(seed)
    days = 7 * weeks
    level = rng.uniform(0.05, 0.95, accounts)
    noise = rng.uniform(0.0, 0.5, accounts)
    churn_at = np.full(accounts, -1)
    p = 1 / (1 + np.exp((level - 0.35) * 12))  # odds of leaving in the book: high below 35 % of seats
    leaves = rng.random(accounts) < p * 0.9
    churn_at[leaves] = rng.integers(42, days - 7, leaves.sum())
    ext = [f"A{i:03d}" for i in range(accounts)]
    levels, noises, churns = list(level), list(noise), [int(c) for c in churn_at]
    if probes:
        ext += ["QUIET", "NOISY"]
        levels += [0.1, 0.8]
        noises += [0.0, 0.9]
        churns += [-1, -1]
    signals = []
    for n in range(len(ext)):
        last = churns[n] if churns[n] >= 0 else days
        for w in range(last // 7 + 1):
            swing = 1 + noises[n] * rng.uniform(-1, 1)  # the week's swing: meaningless
            for d in range(w * 7, min(last, w * 7 + 7)):
                day = START + timedelta(days=d)
                share = np.clip(levels[n] * swing * (1.0 if day.weekday() < 5 else 0.15), 0, 1)
                active = int(rng.binomial(20, share))
                signals.append((day, n, "active_users", active))
                signals.append((day, n, "logins", active * 2 + int(rng.poisson(1))))
    return _Plan(days, ext, levels, noises, churns, signals)


def _upgrades(
    s, ids: dict[str, int], ext: list[str], levels: list, churns: list, days: int, seed: int
) -> None:
    """An accounts file on an upgrade day with MRR up by half, for 85 % of the accounts in the band
    (none of the others), from their own generator so the rest of the book is unchanged."""
    rng = np.random.default_rng(seed + 1000)
    for n, e in enumerate(ext):
        day = int(rng.integers(14, days - 7))
        if not (UPGRADE_BAND[0] <= levels[n] <= UPGRADE_BAND[1]) or rng.random() >= 0.85:
            continue
        if e in ("QUIET", "NOISY") or 0 <= churns[n] <= day:
            continue
        s.add(
            AccountSnapshot(
                account_id=ids[e],
                as_of=START + timedelta(days=day),
                plan="Standard",
                mrr=Decimal(150_000),
                seats=20,
                currency="JPY",
                status="active",
                renewal_date=START + timedelta(days=300),
            )
        )
