"""Models in the database (table ``models``), versioned per kind, as JSON numbers: any instance, after
any restart, scores with exactly the stored model, and no pickle is ever loaded from a database.
``ChurnModel.algorithm`` says how to read ``params``: logistic_regression (model/train.LinearModel)
or gradient_boosting (model/boosted.BoostedModel, its trees as flat lists of numbers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model.boosted import BoostedModel, Trees
from model.features import Feature
from model.train import LinearModel, Scoring
from storage.models import ChurnModel

ALGORITHM = LinearModel.algorithm
ALGORITHMS = (LinearModel.algorithm, BoostedModel.algorithm)


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in np.asarray(a, dtype=float)]


def _array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def save(
    session: Session,
    model: Scoring,
    *,
    trained_at: datetime,
    data_through: date,
    backtest: dict[str, Any] | None = None,
) -> ChurnModel:
    """Store ``model`` (either algorithm) as the next version of its kind."""
    last = session.scalar(select(func.max(ChurnModel.version)).where(ChurnModel.kind == model.kind)) or 0
    params: dict[str, Any] = {
        "metrics": model.metrics,
        "plans": model.plans,
        "typical": _floats(model.typical),
        "typical_by_plan": {k: _floats(np.array(v)) for k, v in model.typical_by_plan.items()},
    }
    if isinstance(model, LinearModel):
        params |= {
            "fill": _floats(model.fill),
            "mean": _floats(model.mean),
            "scale": _floats(model.scale),
            "coef": _floats(model.coef),
            "intercept": model.intercept,
        }
    elif isinstance(model, BoostedModel):
        params |= {"baseline": model.baseline, "trees": model.trees.as_json()}
    else:
        raise TypeError(f"cannot store a {type(model).__name__}")
    row = ChurnModel(
        kind=model.kind,
        version=last + 1,
        algorithm=model.algorithm,
        trained_at=trained_at,
        data_through=data_through,
        features=[f.as_json() for f in model.features],
        params=params,
        threshold=model.threshold if model.threshold is not None and np.isfinite(model.threshold) else None,
        budget=model.budget,
        backtest=backtest or {},
        training=model.training,
    )
    session.add(row)
    session.flush()
    return row


def load(row: ChurnModel) -> Scoring:
    """The stored model, read by its ``algorithm`` (rows from before gradient boosting are regressions)."""
    p = row.params
    common: dict[str, Any] = {
        "kind": row.kind,
        "features": [Feature(**f) for f in row.features],
        "metrics": list(p["metrics"]),
        "plans": list(p["plans"]),
        "typical": _array(p["typical"]),
        "typical_by_plan": {
            k: [np.nan if v is None else v for v in vs] for k, vs in p["typical_by_plan"].items()
        },
        "threshold": row.threshold,
        "budget": row.budget,
        "training": dict(row.training),
    }
    algorithm = row.algorithm or ALGORITHM
    if algorithm == BoostedModel.algorithm:
        return BoostedModel(**common, trees=Trees.from_json(p["trees"]), baseline=float(p["baseline"]))
    if algorithm != LinearModel.algorithm:
        raise ValueError(f"model {row.kind} v{row.version}: unknown algorithm {algorithm!r}")
    return LinearModel(
        **common,
        fill=_array(p["fill"]),
        mean=_array(p["mean"]),
        scale=_array(p["scale"]),
        coef=_array(p["coef"]),
        intercept=float(p["intercept"]),
    )


def latest_row(session: Session, kind: str) -> ChurnModel | None:
    return session.scalar(
        select(ChurnModel).where(ChurnModel.kind == kind).order_by(ChurnModel.version.desc()).limit(1)
    )


def latest(session: Session, kind: str) -> Scoring | None:
    """The newest stored model of ``kind`` (churn | upsell), or None before the first training."""
    row = latest_row(session, kind)
    return load(row) if row is not None else None
