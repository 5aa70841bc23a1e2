"""The shared KPIs, exactly as domain.md defines them, from the accounts' history (account_snapshots).

Customers are counted from the account data as it stood on each date: the latest snapshot on or
before that date. Amounts are MRR converted to one base currency with configured rates; an account in
a currency without a rate is left out and counted in ``excluded``. Too little history gives None
("not enough data"), never a made-up number. Every rate says what its denominator was."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handoff.cadence import onboarding_completion
from settings import CadenceRules
from storage.models import AccountSnapshot, UpsellOpportunity


@dataclass(frozen=True)
class Snap:
    status: str
    mrr: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive


def last_full_month(as_of: date) -> Period:
    """The last calendar month that ended before ``as_of``."""
    first_this = as_of.replace(day=1)
    end = first_this - timedelta(days=1)
    return Period(end.replace(day=1), end)


def months_back(d: date, months: int) -> date:
    """The last day of the month ``months`` before ``d``'s month."""
    y, m = d.year, d.month - months
    while m <= 0:
        y, m = y - 1, m + 12
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return nxt - timedelta(days=1)


def state_at(session: Session, day: date) -> dict[int, Snap]:
    """Every account as the latest snapshot on or before ``day`` described it."""
    latest = (
        select(AccountSnapshot.account_id, func.max(AccountSnapshot.as_of).label("as_of"))
        .where(AccountSnapshot.as_of <= day)
        .group_by(AccountSnapshot.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            AccountSnapshot.account_id, AccountSnapshot.status, AccountSnapshot.mrr, AccountSnapshot.currency
        ).join(
            latest,
            (latest.c.account_id == AccountSnapshot.account_id) & (latest.c.as_of == AccountSnapshot.as_of),
        )
    )
    return {aid: Snap(status, mrr, cur) for aid, status, mrr, cur in rows}


def has_history(session: Session, day: date) -> bool:
    return (
        session.scalar(select(func.count()).select_from(AccountSnapshot).where(AccountSnapshot.as_of <= day))
        > 0
    )


@dataclass
class Money:
    base: str
    rates: dict[str, Decimal]
    excluded: set[int] = field(default_factory=set)

    def of(self, aid: int, snap: Snap | None) -> Decimal | None:
        if snap is None or snap.status != "active" or snap.mrr is None:
            return Decimal(0)
        cur = (snap.currency or self.base).upper()
        if cur == self.base:
            return snap.mrr
        rate = self.rates.get(cur)
        if rate is None:
            self.excluded.add(aid)
            return None
        return snap.mrr * rate


def _mrr(
    money: Money, ids: set[int], then: dict[int, Snap], now: dict[int, Snap]
) -> tuple[Decimal, Decimal, Decimal]:
    """For ``ids``: MRR then, MRR now, and MRR kept (now, capped at then), in the base currency; accounts
    in a currency without a rate are skipped (and counted by ``money``)."""
    total_then, total_now, kept = Decimal(0), Decimal(0), Decimal(0)
    for aid in ids:
        was, is_ = money.of(aid, then.get(aid)), money.of(aid, now.get(aid))
        if was is None or is_ is None:
            continue
        total_then, total_now, kept = total_then + was, total_now + is_, kept + min(was, is_)
    return total_then, total_now, kept


def _pct(num: Decimal | int, den: Decimal | int) -> float | None:
    return None if not den else round(float(Decimal(num) / Decimal(den) * 100), 1)


def _active(state: dict[int, Snap]) -> set[int]:
    return {aid for aid, s in state.items() if s.status == "active"}


def compute(
    session: Session,
    as_of: date,
    *,
    base_currency: str = "JPY",
    fx_rates: dict[str, Any] | None = None,
    cadence: CadenceRules | None = None,
) -> dict[str, Any]:
    """The week's figures as one JSON-ready object (percentages as numbers, None = not enough data)."""
    money = Money(base_currency.upper(), {k.upper(): Decimal(str(v)) for k, v in (fx_rates or {}).items()})
    month = last_full_month(as_of)
    before = month.start - timedelta(days=1)
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "base_currency": money.base,
        "period": {"start": month.start.isoformat(), "end": month.end.isoformat()},
        "denominators": {},  # in words, for the JSON and the CLI
        "denominator_facts": {},  # the same as data, for the Slack message in each language
    }
    facts = out["denominator_facts"]
    enough = has_history(session, before)
    start, end = state_at(session, before), state_at(session, month.end)
    at_start, at_end = _active(start), _active(end)
    churned, acquired = at_start - at_end, at_end - at_start
    out.update(
        customers_at_start=len(at_start) if enough else None,
        customers_at_end=len(at_end),
        churned_customers=len(churned) if enough else None,
        new_customers=len(acquired) if enough else None,
    )
    out["churn_rate"] = _pct(len(churned), len(at_start)) if enough else None
    out["customer_retention_rate"] = _pct(len(at_end) - len(acquired), len(at_start)) if enough else None
    out["denominators"]["churn_rate"] = out["denominators"]["customer_retention_rate"] = (
        f"customers at the start of {month.start:%Y-%m} ({len(at_start)})" if enough else "not enough data"
    )
    ym = f"{month.start:%Y-%m}"
    facts["churn_rate"] = facts["customer_retention_rate"] = (
        {"code": "customers_at_start", "month": ym, "count": len(at_start)}
        if enough
        else {"code": "no_history", "date": before.isoformat()}
    )

    base_mrr, _, kept = _mrr(money, at_start, start, end)
    out["grr"] = _pct(kept, base_mrr) if enough else None
    out["denominators"]["grr"] = (
        (
            f"MRR at the start of {month.start:%Y-%m} of its {len(at_start)} customers "
            f"({base_mrr:,.0f} {money.base})"
        )
        if enough
        else "not enough data"
    )
    facts["grr"] = (
        {
            "code": "mrr_at_start",
            "month": ym,
            "count": len(at_start),
            "amount": float(base_mrr),
            "currency": money.base,
        }
        if enough
        else {"code": "no_history", "date": before.isoformat()}
    )

    year_ago = months_back(month.end, 12)
    if has_history(session, year_ago):
        cohort_then = state_at(session, year_ago)
        cohort = _active(cohort_then)
        then_mrr, now_mrr, _ = _mrr(money, cohort, cohort_then, end)
        out["nrr"] = _pct(now_mrr, then_mrr)
        out["denominators"]["nrr"] = (
            f"MRR at {year_ago:%Y-%m-%d} of the {len(cohort)} customers then ({then_mrr:,.0f} {money.base})"
        )
        facts["nrr"] = {
            "code": "mrr_year_ago",
            "date": year_ago.isoformat(),
            "count": len(cohort),
            "amount": float(then_mrr),
            "currency": money.base,
        }
    else:
        out["nrr"] = None
        out["denominators"]["nrr"] = f"not enough data: no account history on or before {year_ago}"
        facts["nrr"] = {"code": "no_history", "date": year_ago.isoformat()}

    done, onboarded = onboarding_completion(session, month.start, month.end, cadence)
    out["onboarding_completion_rate"] = _pct(done, onboarded)
    out["denominators"]["onboarding_completion_rate"] = (
        f"companies whose {(cadence or CadenceRules()).onboarding_days}-day onboarding ended in "
        f"{month.start:%Y-%m} ({onboarded})"
        if onboarded
        else f"not enough data: no onboarding ended in {month.start:%Y-%m}"
    )
    facts["onboarding_completion_rate"] = (
        {"code": "onboardings_ended", "month": ym, "count": onboarded}
        if onboarded
        else {"code": "no_onboarding_ended", "month": ym}
    )

    week_start, week_end = as_of - timedelta(days=7), as_of - timedelta(days=1)
    w0, w1 = state_at(session, week_start - timedelta(days=1)), state_at(session, week_end)
    count, gained = 0, Decimal(0)
    for aid in _active(w0) & _active(w1):
        was, now = money.of(aid, w0.get(aid)), money.of(aid, w1.get(aid))
        if was is not None and now is not None and now > was:
            count += 1
            gained += now - was
    out["upsell_count"], out["upsell_mrr"] = count, float(gained)
    out["upsell_opportunities"] = session.scalar(
        select(func.count())
        .select_from(UpsellOpportunity)
        .where(
            UpsellOpportunity.created_at >= datetime.combine(week_start, time.min, UTC),
            UpsellOpportunity.created_at < datetime.combine(as_of, time.min, UTC),
        )
    )
    out["denominators"]["upsell_count"] = f"accounts whose MRR rose between {week_start} and {week_end}"
    out["excluded_accounts_without_fx_rate"] = len(money.excluded)
    return out
