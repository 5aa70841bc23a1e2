"""The alert budget: with a trained model, the scan alerts the accounts the model ranks highest, at the
stored threshold that met the budget in training, and caps each week at the budget. The first slice's
backtest let 2.48 alerts per 100 accounts a week through a 2.0 budget; the cap is what keeps a team
reading the channel. Hard rules the team sets (inactivity, seats full, plan limit) still raise alerts,
and count in the same budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.rules import CHURN, UPSELL, Finding
from model import store
from model.features import History
from model.train import LinearModel, drivers
from settings import Rules
from storage.models import Alert

HARD = {CHURN: {"inactive", "inactive_long"}, UPSELL: {"seats_full", "plan_limit"}}
MODEL_KIND = {CHURN: "churn", UPSELL: "upsell"}
REASON = {CHURN: "model_churn", UPSELL: "model_upsell"}


def band(p: float) -> str:
    """The churn probability as a CSM reads it: a band, not a third decimal."""
    return "high" if p >= 0.3 else "elevated" if p >= 0.1 else "low"


@dataclass
class Scored:
    """One model's reading of one account on the scored day."""

    probability: float
    threshold: float | None
    version: int
    reason: dict  # the card's reason: probability, band and the top drivers in numbers (en and ja)


def score_accounts(session: Session, day: date, rules: Rules) -> dict[str, dict[int, Scored]]:
    """Per model kind (churn_risk | upsell), per Account.id: its probability from the stored model.
    Empty for a kind with no model yet."""
    rows = {k: store.latest_row(session, m) for k, m in MODEL_KIND.items()}
    rows = {k: r for k, r in rows.items() if r is not None}
    if not rows:
        return {}
    h = rules.health
    history = History(session, day, 1, activity=h.activity_metric, names=h.metric_names)
    out: dict[str, dict[int, Scored]] = {}
    for kind, row in rows.items():
        model = store.load(row)
        frame = history.frame(0, metrics=model.metrics, plans=model.plans)
        x = model.matrix(frame)
        p = model.proba(x) if len(x) else np.zeros(0)
        out[kind] = {
            int(a): Scored(
                float(p[i]), row.threshold, row.version, _reason(kind, model, x[i], frame.plans[i], p[i])
            )
            for i, a in enumerate(frame.account_ids)
        }
    return out


def _reason(kind: str, model: LinearModel, x: np.ndarray, plan: str | None, p: float) -> dict:
    top = drivers(model, x, plan, top=3)
    return {
        "code": REASON[kind],
        "params": {
            "pct": round(float(p) * 100, 1),
            "risk": band(float(p)),
            "drivers": [{**d.as_json("en", plan), "text_ja": d.text("ja", plan)} for d in top],
        },
    }


def cap(accounts: int, rules: Rules, kind: str) -> int:
    """This week's alerts for ``kind``: its share of the budget, rounded down (never over the budget)."""
    a = rules.alerts
    return int(
        accounts * a.budget_per_100_accounts_week / 100 * a.budget_shares[MODEL_KIND[kind]] / 100 + 1e-9
    )


def used_this_week(session: Session, now: datetime, kind: str) -> int:
    """Alerts of ``kind`` raised in the last 7 days and still open: they count in this week's budget."""
    since = now - timedelta(days=7)
    return len(
        session.scalars(
            select(Alert.id).where(Alert.kind == kind, Alert.state != "resolved", Alert.raised_at > since)
        ).all()
    )


def select_findings(
    findings: Iterable[Finding],
    scored: dict[int, Scored],
    kind: str,
    *,
    accounts: int,
    used: int,
    blocked: set[int],
    open_ids: set[int],
    rules: Rules,
) -> tuple[list[Finding], int]:
    """The week's findings of ``kind`` under the budget: hard-rule findings always (counted first), then
    the model's highest-ranked accounts at or above its threshold while the cap allows. An account
    with an open alert keeps being updated without a new slot; one in cooldown or snoozed
    (``blocked``) takes none. Returns the findings and how many of them were cut by the cap."""
    hard: dict[int, Finding] = {}
    for f in findings:
        keep = [r for r in f.reasons if r["code"] in HARD[kind]]
        if keep:
            hard[f.account_id] = Finding(f.account_id, kind, f.severity, f.score, keep)
    left = cap(accounts, rules, kind) - used - sum(1 for a in hard if a not in open_ids and a not in blocked)
    out = dict(hard)
    cut = 0
    ranked = sorted(scored.items(), key=lambda kv: -kv[1].probability)
    for account_id, s in ranked:
        if s.threshold is None or s.probability < s.threshold:
            break
        prior = out.get(account_id)
        if prior is None and account_id not in open_ids and account_id not in blocked:
            if left <= 0:
                cut += 1
                continue
            left -= 1
        severity = "high" if s.probability >= 2 * s.threshold or prior is not None else "medium"
        reasons = [s.reason, *(prior.reasons if prior else [])]
        out[account_id] = Finding(account_id, kind, severity, prior.score if prior else None, reasons)
    return list(out.values()), cut
