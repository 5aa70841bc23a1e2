"""Which alerts a health reading raises. Pure functions of the reading and the rules: each finding
carries its reasons in numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from accounts.health import Health, num
from accounts.kinds import CHURN, UPSELL
from settings import AlertRules, HealthRules

SEVERITY_RANK = {"medium": 1, "high": 2}


@dataclass(frozen=True)
class Finding:
    account_id: int
    kind: str
    severity: str
    score: int | None
    reasons: list[dict[str, Any]]  # [{"code": ..., "params": {...}}]

    @property
    def codes(self) -> set[str]:
        return {r["code"] for r in self.reasons}


def _reason(code: str, **params: Any) -> dict[str, Any]:
    return {"code": code, "params": params}


def churn(h: Health, as_of: date, rules: AlertRules, health_rules: HealthRules) -> Finding | None:
    if h.score is None:
        return None
    reasons = []
    if h.band == "red":
        reasons.append(_reason("health_red", score=h.score))
    for metric in health_rules.usage_metrics:
        base, now = h.usage.baseline.get(metric, 0.0), h.usage.recent.get(metric, 0.0)
        if base > 0 and (1 - now / base) * 100 >= rules.drop_pct:
            reasons.append(
                _reason(
                    "usage_drop",
                    metric=metric,
                    recent=num(round(now, 1)),
                    baseline=num(round(base, 1)),
                    pct=round((1 - now / base) * 100),
                    recent_days=health_rules.recent_days,
                )
            )
    idle = (as_of - h.usage.last_active).days if h.usage.last_active else None
    if idle is None:
        reasons.append(_reason("inactive_long", days=90))
    elif idle >= rules.inactive_days:
        reasons.append(_reason("inactive", days=idle))
    # from the day asked for, not the data-through day: a late feed moves no renewal
    days = (h.renewal_date - (h.asked_on or as_of)).days if h.renewal_date else None
    if h.renewal_date and days is not None and 0 <= days <= rules.renewal_days and h.band != "green":
        reasons.append(
            _reason(
                "renewal_risk",
                days=days,
                date=h.renewal_date.isoformat(),
                band=h.band,
            )
        )
    if not reasons:
        return None
    severity = "high" if h.band == "red" or len(reasons) >= 2 else "medium"
    return Finding(h.account_id, CHURN, severity, h.score, reasons)


def upsell(h: Health, rules: AlertRules, health_rules: HealthRules) -> Finding | None:
    if h.score is None:
        return None
    reasons = []
    active = h.usage.recent.get(health_rules.activity_metric)
    if h.seats and active is not None and active / h.seats * 100 >= rules.utilization_pct:
        reasons.append(
            _reason(
                "seats_full", active=num(round(active, 1)), seats=h.seats, pct=round(active / h.seats * 100)
            )
        )
    for metric in health_rules.usage_metrics:
        base, now = h.usage.baseline.get(metric, 0.0), h.usage.recent.get(metric, 0.0)
        if base > 0 and (now / base - 1) * 100 >= rules.growth_pct:
            reasons.append(
                _reason(
                    "usage_growth",
                    metric=metric,
                    recent=num(round(now, 1)),
                    baseline=num(round(base, 1)),
                    pct=round((now / base - 1) * 100),
                    recent_days=health_rules.recent_days,
                )
            )
    for metric, limit in (rules.plan_limits.get(h.plan or "") or {}).items():
        peak = h.usage.recent_max.get(metric)
        if peak is not None and limit and peak >= limit * rules.limit_pct / 100:
            reasons.append(
                _reason("plan_limit", metric=metric, value=num(peak), limit=num(limit), plan=h.plan)
            )
    if not reasons:
        return None
    return Finding(h.account_id, UPSELL, "high" if len(reasons) >= 2 else "medium", h.score, reasons)
