"""Everything the weekly digest says, as plain data: the KPIs with last week's values, handoffs,
alerts, health bands with the week's movers, and renewals due. Rendering is bot/views/digest.py's job."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from accounts.health import health_all
from digest import funnel
from digest.chart import trend
from digest.kpi import MONTHLY, WEEKLY, Money, compute, last_full_month, month, week
from handoff.checklist import Item, missing_items
from model import decisions
from settings import Rules
from storage.models import Account, Alert, Handoff

KPI_KEYS = MONTHLY + WEEKLY
STEPS = 10  # the parts build() reports to its progress callback, so a caller can show a total


def _utc(d: date) -> datetime:
    return datetime.combine(d, time.min, UTC)


def _hours(deltas: list[timedelta]) -> float | None:
    return round(statistics.median(d.total_seconds() / 3600 for d in deltas), 1) if deltas else None


def _handoffs(session: Session, as_of: date) -> dict[str, Any]:
    """Handoffs in the 7 days before ``as_of``."""
    start, end = _utc(as_of - timedelta(days=7)), _utc(as_of)

    handoffs = session.scalars(
        select(Handoff)
        .where(Handoff.created_at >= start, Handoff.created_at < end)
        .options(selectinload(Handoff.stakeholders))
    ).all()
    accepted = session.scalars(
        select(Handoff).where(Handoff.accepted_at >= start, Handoff.accepted_at < end)
    ).all()
    return {
        "created": len(handoffs),
        "accepted": len(accepted),
        "median_hours_to_accept": _hours([h.accepted_at - h.created_at for h in accepted if h.accepted_at]),
        "average_completeness_pct": round(
            statistics.mean((len(Item) - len(missing_items(h))) / len(Item) * 100 for h in handoffs), 1
        )
        if handoffs
        else None,
    }


def _alerts(session: Session, as_of: date) -> dict[str, Any]:
    """Alerts raised, acknowledged and resolved in the 7 days before ``as_of``."""
    start, end = _utc(as_of - timedelta(days=7)), _utc(as_of)

    def count(column: Any) -> int:
        return (
            session.scalar(select(func.count()).select_from(Alert).where(column >= start, column < end)) or 0
        )

    acked = session.scalars(
        select(Alert).where(Alert.acknowledged_at >= start, Alert.acknowledged_at < end)
    ).all()
    return {
        "raised": count(Alert.raised_at),
        "acknowledged": len(acked),
        "resolved": count(Alert.resolved_at),
        "median_hours_to_acknowledge": _hours(
            [a.acknowledged_at - a.raised_at for a in acked if a.acknowledged_at]
        ),
        "open": session.scalar(select(func.count()).select_from(Alert).where(Alert.state != "resolved")) or 0,
    }


def build(
    session: Session, as_of: date, rules: Rules, *, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """The digest for the week ending the day before ``as_of``: the monthly figures with the month
    before's, the weekly ones with the week before's (``periods`` names each figure's period).
    ``progress`` hears the parts done so far, of STEPS (a terminal's bar; the digest draws nothing)."""
    steps = 0

    def step() -> None:
        nonlocal steps
        steps += 1
        if progress:
            progress(steps)

    report = _kpis(session, as_of, rules, step)
    for key, part in (("handoffs", _handoffs), ("alerts", _alerts)):
        report[key] = part(session, as_of)
        report[key]["previous"] = part(session, as_of - timedelta(days=7))
        step()
    report["funnel"] = funnel.week(session, as_of)
    report["model"] = decisions.digest_part(session)  # who decides the alerts, and the last backtest
    step()
    report["health"] = _health(session, as_of, rules, step)
    report["renewals"] = _renewals(session, as_of)
    step()
    report["trend"] = trend(session, as_of - timedelta(days=1), rules)
    step()
    return report


def _kpis(session: Session, as_of: date, rules: Rules, step: Callable[[], None]) -> dict[str, Any]:
    """The KPIs now, with the month before's monthly figures and the week before's weekly ones."""
    d = rules.digest
    now = compute(
        session,
        as_of,
        base_currency=d.base_currency,
        fx_rates=d.fx_rates,
        cadence=rules.cadence,
        gross_margin_pct=d.gross_margin_pct,
    )
    step()
    money = Money.of_rules(d.base_currency, d.fx_rates)
    last_month = last_full_month(last_full_month(as_of).start)
    before = month(
        session, last_month, money=money, cadence=rules.cadence, gross_margin_pct=d.gross_margin_pct
    )
    step()
    last_week = week(session, as_of - timedelta(days=7), money=money)
    step()
    return {
        **now,
        "previous": {**{k: before.get(k) for k in MONTHLY}, **{k: last_week.get(k) for k in WEEKLY}},
        "previous_period": last_month.json(),
    }


def _health(session: Session, as_of: date, rules: Rules, step: Callable[[], None]) -> dict[str, Any]:
    """The health bands yesterday and a week before, and the accounts that changed band (worst first)."""
    day, week_ago = as_of - timedelta(days=1), as_of - timedelta(days=8)
    bands_now = {h.account_id: (h.name, h.band, h.score) for h in health_all(session, day, rules.health)}
    step()
    bands_then = {h.account_id: h.band for h in health_all(session, week_ago, rules.health)}
    step()
    counts = {b: 0 for b in ("green", "yellow", "red", "unknown")}
    for _, band, _ in bands_now.values():
        counts[band] += 1
    order = {"red": 0, "yellow": 1, "green": 2, "unknown": 3}
    movers = [
        {"name": name, "from": bands_then[aid], "to": band, "score": score}
        for aid, (name, band, score) in bands_now.items()
        if aid in bands_then and bands_then[aid] != band and "unknown" not in (band, bands_then[aid])
    ]
    movers.sort(key=lambda m: (order[m["to"]] - order[m["from"]], m["name"]))  # the biggest falls first
    before = {b: 0 for b in counts}
    for band in bands_then.values():
        before[band] += 1
    return {"bands": counts, "previous": before, "movers": movers[:10], "movers_total": len(movers)}


def _renewals(session: Session, as_of: date) -> dict[str, int]:
    """Active accounts renewing in the next 30, 60 and 90 days."""
    return {
        f"next_{n}_days": session.scalar(
            select(func.count())
            .select_from(Account)
            .where(
                Account.status == "active",
                Account.renewal_date > as_of,
                Account.renewal_date <= as_of + timedelta(days=n),
            )
        )
        or 0
        for n in (30, 60, 90)
    }
