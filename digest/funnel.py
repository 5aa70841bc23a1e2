"""THE MODEL funnel and inside-sales activity, from the company-level daily metrics the team ingests.

The rates are the domain's formulas over one period (the 7 days before the digest), not cohorts: a
lead that becomes an opportunity next week counts in next week's opportunities. Each rate is None
when its denominator is missing or zero; a metric nobody ingested stays None, not 0."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import CompanyMetric

# Every metric name the ingest accepts, with what it counts (README and error messages quote these).
FUNNEL_METRICS = {
    "visitors": "website visitors",
    "leads": "new leads",
    "opportunities": "opportunities created",
    "wins": "deals won",
    "renewals_due": "customers whose contract came up for renewal",
    "renewals": "of those, customers who renewed",
}
IS_METRICS = {
    "calls": "calls made",
    "calls_connected": "calls that reached the person",
    "call_hours": "hours spent calling (for calls per hour)",
    "talk_minutes": "total talk time in minutes",
    "after_call_minutes": "after-call work in minutes",
    "emails_sent": "emails sent",
    "emails_opened": "emails opened",
    "meetings": "meetings created",
}
METRICS = {**FUNNEL_METRICS, **IS_METRICS}

# (name, numerator, denominator, scale): the domain's formulas
FUNNEL_RATES = (
    ("acquisition_rate", "leads", "visitors", 100),
    ("opportunity_rate", "opportunities", "leads", 100),
    ("win_rate", "wins", "opportunities", 100),
    ("renewal_rate", "renewals", "renewals_due", 100),
)
IS_RATES = (
    ("contact_rate", "calls_connected", "calls", 100),
    ("email_open_rate", "emails_opened", "emails_sent", 100),
    ("conversion_rate", "opportunities", "leads", 100),
    ("calls_per_hour", "calls", "call_hours", 1),
    ("att_minutes", "talk_minutes", "calls", 1),
)


def totals(session: Session, start: date, end: date) -> dict[str, float]:
    """Each metric's sum over the days ``start`` .. ``end`` inclusive; absent metrics are absent."""
    rows = session.execute(
        select(CompanyMetric.metric, func.sum(CompanyMetric.value))
        .where(CompanyMetric.day >= start, CompanyMetric.day <= end)
        .group_by(CompanyMetric.metric)
    )
    return {m: float(v) for m, v in rows}


def _ratio(t: dict[str, float], num: str, den: str, scale: int) -> float | None:
    if t.get(num) is None or not t.get(den):
        return None
    return round(t[num] / t[den] * scale, 1)


def _figures(t: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {m: t.get(m) for m in METRICS}
    for name, num, den, scale in FUNNEL_RATES + IS_RATES:
        out[name] = _ratio(t, num, den, scale)
    att = out["att_minutes"]
    after = _ratio(t, "after_call_minutes", "calls", 1)
    out["aht_minutes"] = None if att is None or after is None else round(att + after, 1)
    out["has_funnel"] = any(t.get(m) is not None for m in FUNNEL_METRICS)
    out["has_inside_sales"] = any(t.get(m) is not None for m in IS_METRICS)
    return out


def week(session: Session, as_of: date) -> dict[str, Any]:
    """The 7 days before ``as_of`` with the 7 before them as ``previous``."""
    end = as_of - timedelta(days=1)
    start = end - timedelta(days=6)
    now = _figures(totals(session, start, end))
    before = _figures(totals(session, start - timedelta(days=7), start - timedelta(days=1)))
    return {**now, "period": {"start": start.isoformat(), "end": end.isoformat()}, "previous": before}
