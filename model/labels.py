"""Outcomes from the team's own history, nothing labelled by hand: churns from the accounts' churned_on
(or the first accounts file that listed them churned), upgrades from MRR rises between accounts files.

A week's label is whether the outcome came within ``horizon`` days after its day. It is known only once
that whole window has passed: training at a cutoff keeps the weeks with ``day + horizon <= cutoff``,
so a model never learns from an outcome that had not happened yet when it scores."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Account, AccountSnapshot

CHURN_HORIZON = 90  # what the churn model learns: churn within 90 days
AUC_HORIZON = 30  # what the health AUC is measured on (/work/shared/docs/alert-quality.md)
UPSELL_HORIZON = 90


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def churn_dates(session: Session) -> dict[int, list[date]]:
    """Account.id -> its churn days: churned_on, else the first accounts file that said churned."""
    out: dict[int, list[date]] = {}
    for aid, day in session.execute(
        select(Account.id, Account.churned_on).where(Account.churned_on.is_not(None))
    ):
        out[aid] = [_as_date(day)]
    listed = session.execute(
        select(AccountSnapshot.account_id, func.min(AccountSnapshot.as_of))
        .where(AccountSnapshot.status == "churned")
        .group_by(AccountSnapshot.account_id)
    )
    for aid, day in listed:
        out.setdefault(aid, [_as_date(day)])
    return out


def upgrade_dates(session: Session) -> dict[int, list[date]]:
    """Account.id -> the days of the accounts files whose MRR was higher than the file before (same
    currency, both active): the window function leaves only the rises, however many files there are."""
    s = AccountSnapshot
    prev_mrr = func.lag(s.mrr).over(partition_by=s.account_id, order_by=s.as_of)
    prev_cur = func.lag(s.currency).over(partition_by=s.account_id, order_by=s.as_of)
    prev_status = func.lag(s.status).over(partition_by=s.account_id, order_by=s.as_of)
    inner = select(
        s.account_id,
        s.as_of,
        s.mrr,
        s.status,
        s.currency,
        prev_mrr.label("prev_mrr"),
        prev_cur.label("prev_cur"),
        prev_status.label("prev_status"),
    ).subquery()
    rows = session.execute(
        select(inner.c.account_id, inner.c.as_of)
        .where(
            inner.c.mrr > inner.c.prev_mrr,
            inner.c.prev_mrr > 0,
            inner.c.status == "active",
            inner.c.prev_status == "active",
            func.coalesce(inner.c.currency, "") == func.coalesce(inner.c.prev_cur, ""),
        )
        .order_by(inner.c.account_id, inner.c.as_of)
    )
    out: dict[int, list[date]] = {}
    for aid, day in rows:
        out.setdefault(aid, []).append(_as_date(day))
    return out


def within(
    account_ids: Sequence[int], day: date, events: Mapping[int, Sequence[date]], horizon: int
) -> np.ndarray:
    """Per account: an event 1..horizon days after ``day``."""
    lo, out = day + timedelta(days=1), np.zeros(len(account_ids), dtype=bool)
    for n, aid in enumerate(account_ids):
        ev = events.get(int(aid))
        if ev:
            i = bisect_left(ev, lo)
            out[n] = i < len(ev) and (ev[i] - day).days <= horizon
    return out


def known(day: date, horizon: int, cutoff: date) -> bool:
    """Whether a week's ``horizon``-day outcome is known at ``cutoff``."""
    return day + timedelta(days=horizon) <= cutoff
