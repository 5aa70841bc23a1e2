"""Who decided the alerts, as the digest tells it: the model-or-rules switches the scan recorded
(alerts/budget.py writes them) and the stored churn model's last backtest. Read-only apart from
marking a switch told, so the digest needs nothing from alerts/."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from model import store
from storage.models import ModelDecision

_BACKTEST_KEYS = ("churn_recall_7_90d", "churn_alerts_per_100_week", "churn_lift_90d", "auc_30d")


def digest_part(session: Session) -> dict[str, Any]:
    """For the weekly digest: the switches not yet announced, and one line's worth of the last
    backtest (the stored churn model's, rules and model on the same weeks)."""
    switches = session.scalars(
        select(ModelDecision).where(ModelDecision.announced_at.is_(None)).order_by(ModelDecision.id)
    ).all()
    part: dict[str, Any] = {
        "switches": [
            {"id": d.id, "kind": d.kind, "by": d.decided_by, "why": d.why, "params": d.params}
            for d in switches
        ]
    }
    row = store.latest_row(session, "churn")
    bt = (row.backtest or {}) if row is not None else {}
    if bt.get("model") and bt.get("rules") and bt.get("weeks"):
        part["backtest"] = {
            "first": bt["weeks"]["first"],
            "last": bt["weeks"]["last"],
            **{f"model_{k}": bt["model"].get(k) for k in _BACKTEST_KEYS},
            **{f"rules_{k}": bt["rules"].get(k) for k in _BACKTEST_KEYS},
            # which algorithm the churn model is, and why (model/backtest.choose)
            "algorithm": row.algorithm,
            "algorithm_why": (bt.get("algorithm") or {}).get("why"),
        }
    return part


def announced(session: Session, ids: Iterable[int], now: datetime) -> None:
    """Mark switches as told, in the digest's own transaction: each is announced once."""
    for d in session.scalars(select(ModelDecision).where(ModelDecision.id.in_(list(ids)))):
        d.announced_at = now
