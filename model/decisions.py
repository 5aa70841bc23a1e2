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
from storage.models import ChurnModel, ModelDecision

_BACKTEST_KEYS = ("churn_recall_7_90d", "churn_alerts_per_100_week", "churn_lift_90d", "auc_30d")
# alert kind (model_decisions.kind) -> the model's kind, and where its backtest records its algorithm's
# choice (model/backtest.choose): the churn model's under "algorithm", the upsell model's beside it
_MODELS = {"churn_risk": ("churn", "algorithm"), "upsell": ("upsell", "upsell_algorithm")}


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
    part["algorithms"] = in_use(session)
    return part


def in_use(session: Session) -> list[dict[str, Any]]:
    """Per kind whose alerts the model decides now (its last recorded switch was to the model), the
    algorithm that scores it and why the backtest chose it: the digest names only a model in use, so
    a stored model the rules still overrule is not presented as deciding anything."""
    out = []
    for kind, (name, key) in _MODELS.items():
        last = session.scalars(
            select(ModelDecision).where(ModelDecision.kind == kind).order_by(ModelDecision.id.desc()).limit(1)
        ).first()
        if last is None or last.decided_by != "model":
            continue
        row = session.get(ChurnModel, last.model_id) if last.model_id else None
        row = row or store.latest_row(session, name)
        if row is None:
            continue
        why = ((row.backtest or {}).get(key) or {}).get("why")
        out.append({"kind": kind, "algorithm": row.algorithm or store.ALGORITHM, "why": why})
    return out


def announced(session: Session, ids: Iterable[int], now: datetime) -> None:
    """Mark switches as told, in the digest's own transaction: each is announced once."""
    for d in session.scalars(select(ModelDecision).where(ModelDecision.id.in_(list(ids)))):
        d.announced_at = now
