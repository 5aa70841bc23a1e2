"""What `app.py model train` and `model explain` do, on a session the caller owns (plain code, no Slack).

Training reads the whole stored history once (model/features.py), fits the churn and upsell models on
the weeks whose outcome is known, stores them with the backtest's figures (model/store.py), and so a
later scan, on any instance, scores with the same numbers. Each model (churn, upsell) is the logistic
regression unless gradient boosting, replayed on the same weeks, beat it (model/backtest.choose)."""

from __future__ import annotations

import time as timer
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from accounts.health import data_through
from accounts.names import normalize_name
from model import store
from model.backtest import (
    BOOSTING,
    DEFAULT_BUDGET,
    REGRESSION,
    UPSELL_SHARE,
    history_weeks,
    needed_weeks,
    run,
)
from model.features import History
from model.labels import CHURN_HORIZON, UPSELL_HORIZON, churn_dates, upgrade_dates
from model.train import Driver, NotEnoughHistory, Scoring, drivers, train
from settings import HealthRules, Rules
from storage.models import Account, ChurnModel

# model kind -> where the stored backtest records the choice of its algorithm
CHOICES = {"churn": "algorithm", "upsell": "upsell_algorithm"}


@dataclass
class Trained:
    rows: list[ChurnModel]
    skipped: dict[str, str]  # kind -> why no model
    seconds: float
    data_through: date


def train_models(
    session: Session,
    as_of: date,
    rules: HealthRules,
    *,
    now: datetime,
    budget: float = DEFAULT_BUDGET,
    upsell_share: float = UPSELL_SHARE,
    backtest: bool = True,
    algorithms: Sequence[str] = (REGRESSION,),
) -> Trained:
    """Fit and store the churn and upsell models on everything known up to the data-through day.
    With gradient_boosting among ``algorithms`` (``alerts.model_algorithms``) and a backtest, the
    backtest replays it beside the regression and each kind's model stored is the one it chose.
    Raises NotEnoughHistory (saying how much is needed) when not even the churn model can be fitted."""
    t0 = timer.perf_counter()
    data = data_through(session, as_of, rules)
    if data.through is None:
        raise NotEnoughHistory(f"no usage signals up to {as_of.isoformat()}: ingest signals first")
    anchor = data.day
    weeks = history_weeks(session, anchor, rules)
    names = rules.metric_names
    history = History(session, anchor, max(weeks, 1), activity=rules.activity_metric, names=names)
    frames = [history.frame(k) for k in range(history.weeks)][::-1]
    targets = {
        "churn": (churn_dates(session), CHURN_HORIZON, budget * (1 - upsell_share)),
        "upsell": (upgrade_dates(session), UPSELL_HORIZON, budget * upsell_share),
    }
    fitted: dict[str, Scoring] = {}
    skipped: dict[str, str] = {}
    for kind, (events, horizon, share) in targets.items():
        try:
            fitted[kind] = train(kind, frames, events, horizon, anchor, budget=share)
        except NotEnoughHistory as exc:
            if kind == "churn":
                raise
            skipped[kind] = str(exc)
    figures: dict[str, Any] = {}
    if backtest:
        try:
            compare = BOOSTING in algorithms
            figures = run(
                session, as_of, rules, budget=budget, gradient_boosting=compare, require_outcome=False
            ).as_json()
        except NotEnoughHistory as exc:
            figures = {"skipped": str(exc)}
    for kind, choice in CHOICES.items():  # the algorithm each kind's backtest chose (model/backtest.choose)
        if (figures.get(choice) or {}).get("algorithm") == BOOSTING and kind in fitted:
            events, horizon, share = targets[kind]
            fitted[kind] = train(kind, frames, events, horizon, anchor, budget=share, algorithm=BOOSTING)
    rows = [
        store.save(session, m, trained_at=now, data_through=anchor, backtest=figures) for m in fitted.values()
    ]
    return Trained(rows, skipped, timer.perf_counter() - t0, anchor)


def find_account(session: Session, text: str) -> Account | None:
    """By account_id (the files' external id) or name, as people type it."""
    return session.scalar(
        select(Account)
        .where(or_(Account.external_id == text.strip(), Account.name_key == normalize_name(text)))
        .limit(1)
    )


@dataclass
class Explanation:
    account: Account
    kind: str
    version: int
    day: date
    probability: float
    threshold: float | None
    alerts_from: float | None  # the model's floor: the scan alerts from here while the budget allows
    plan: str | None
    drivers: list[Driver]  # all features, largest contribution (either way) first
    intercept: float

    def as_json(self, locale: str = "en") -> dict[str, Any]:
        return {
            "account_id": self.account.external_id or str(self.account.id),
            "name": self.account.name,
            "kind": self.kind,
            "model_version": self.version,
            "data_through": self.day.isoformat(),
            "probability": round(self.probability, 4),
            "threshold": self.threshold,
            "alerts_from": self.alerts_from,
            "logit": round(self.intercept + sum(d.contribution for d in self.drivers), 4),
            "intercept": round(self.intercept, 4),
            "drivers": [d.as_json(locale, self.plan) for d in self.drivers],
        }


def explain(session: Session, text: str, as_of: date, rules: HealthRules) -> list[Explanation]:
    """The account's churn (and upsell) probability with every driver, from the stored models.
    Raises LookupError with a one-line reason (no such account, no model yet, not a customer)."""
    account = find_account(session, text)
    if account is None:
        raise LookupError(f"no account {text!r}: give its account_id or its name as in the accounts file")
    rows = [r for r in (store.latest_row(session, k) for k in ("churn", "upsell")) if r is not None]
    if not rows:
        raise LookupError("no model trained yet: run `python app.py model train` first")
    day = data_through(session, as_of, rules).day
    history = History(session, day, 1, activity=rules.activity_metric, names=rules.metric_names)
    out = []
    for row in rows:
        model = store.load(row)
        frame = history.frame(0, metrics=model.metrics, plans=model.plans)
        hit = np.nonzero(frame.account_ids == account.id)[0]
        if not len(hit):
            raise LookupError(f"{account.name} was not a customer on {day.isoformat()}: nothing to score")
        x = model.matrix(frame)[hit[0]]
        plan = frame.plans[hit[0]]
        out.append(
            Explanation(
                account,
                row.kind,
                row.version,
                day,
                float(model.proba(x.reshape(1, -1))[0]),
                row.threshold,
                model.floor,
                plan,
                drivers(model, x, plan, top=None),
                model.intercept,
            )
        )
    return out


def needs_training(session: Session, as_of: date, rules: Rules) -> bool:
    """No model, or one ``alerts.model_retrain_days`` (a week) or more older than the data, and history
    enough to try: a cheap read, so a scan takes the training ledger only when there is something to do."""
    data = data_through(session, as_of, rules.health)
    if data.through is None or history_weeks(session, data.day, rules.health) < needed_weeks():
        return False
    row = store.latest_row(session, "churn")
    return row is None or (data.day - row.data_through).days >= rules.alerts.model_retrain_days


def train_if_stale(
    session: Session, as_of: date, rules: Rules, *, now: datetime, backtest: bool = True
) -> str:
    """The scan's training: fit and store the models when none exists or the stored churn model is
    ``alerts.model_retrain_days`` or more older than the data, so nobody has to run `model train`.
    Says what it did, in a line."""
    data = data_through(session, as_of, rules.health)
    if data.through is None:
        return "no usage signals: nothing to train on"
    row = store.latest_row(session, "churn")
    if row is not None and (data.day - row.data_through).days < rules.alerts.model_retrain_days:
        return f"model v{row.version} is current (data through {row.data_through.isoformat()})"
    try:
        done = train_models(
            session,
            as_of,
            rules.health,
            now=now,
            budget=rules.alerts.budget_per_100_accounts_week,
            upsell_share=rules.alerts.budget_shares["upsell"] / 100,
            backtest=backtest,
            algorithms=rules.alerts.model_algorithms,
        )
    except NotEnoughHistory as exc:
        return f"not trained: {exc}"
    return "trained " + ", ".join(f"{r.kind} v{r.version}" for r in done.rows)
