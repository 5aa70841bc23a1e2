"""The backtest: the stored history replayed week by week, as a live deployment would have lived it.

At each scored week (the Sunday a Monday scan scores up to) the model is the one trained on the
weeks before it whose outcome was known by then (model/train.py); each week it alerts the
highest-ranked accounts down to twice its training weeks' base rate, within the kind's share of the
budget over 4 weeks, none alerted in the 13 weeks before (the scan's rules). Beside it,
the rules: the health score (accounts/health.py) on the same account-weeks, and the alerts the rules'
scans stored. Figures are those of /work/shared/docs/alert-quality.md (model/metrics.py), counted on
the weeks whose 90-day outcome is known. The figures the scan's model-or-rules switch compares
(``SWITCH``, alerts/budget.decide) are each counted on the weeks whose outcome at its own horizon is
known: the churn AUC and top-decile lift at 30 days have weeks to score eight weeks before any 90-day
figure does, so a model past the cold start is judged then rather than left unjudged."""

from __future__ import annotations

import time as timer
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.health import data_through, score, usage_by_account
from accounts.kinds import CHURN
from model.features import Frame, History
from model.labels import AUC_HORIZON, CHURN_HORIZON, UPSELL_HORIZON, churn_dates, upgrade_dates
from model.metrics import alert_figures, caught_ahead, ranking
from model.train import (
    MIN_EVENTS,
    MIN_WEEKS,
    REST_WEEKS,
    NotEnoughHistory,
    Scoring,
    allowance,
    train,
    weeks_back,
)
from settings import HealthRules
from storage.models import Alert, Signal

DEFAULT_BUDGET = 2.0  # alerts per 100 accounts per week, churn and upsell together
UPSELL_SHARE = 0.25  # the upsell model's share of the budget
REFIT_WEEKS = 4  # the backtest retrains every 4 weeks (the live scan retrains when a week older)


def last_sunday(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


@dataclass
class Replay:
    """What the model did, week by week: scores and alerts per (Account.id, scored day)."""

    scores: list[tuple[int, date, float]] = field(default_factory=list)  # churn probability
    alerts: list[tuple[int, date, str]] = field(default_factory=list)  # (account, day, churn | upsell)
    fits: list[dict[str, Any]] = field(default_factory=list)  # per refit: kind, cutoff, last training week
    upsell_scores: list[tuple[int, date, float]] = field(default_factory=list)  # upgrade probability
    # gradient boosting (model/boosted.py) on the same weeks and training rows, per kind: its scores,
    # and the alerts with it as the model (same budget, floor and rest); upsell in a week without a
    # boosted upsell model alerts as the regression does
    gb_scores: list[tuple[int, date, float]] = field(default_factory=list)  # churn
    gb_alerts: list[tuple[int, date, str]] = field(default_factory=list)
    gb_fits: list[dict[str, Any]] = field(default_factory=list)  # per refit and kind, as ``fits``
    gb_upsell_scores: list[tuple[int, date, float]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why it had no model some weeks
    seconds: dict[str, float] = field(default_factory=dict)

    def until(self, last: date) -> Replay:
        """The same replay with the weeks after ``last`` left out (timings kept)."""

        def cut(rows: list) -> list:
            return [r for r in rows if r[1] <= last]

        return replace(
            self,
            scores=cut(self.scores),
            alerts=cut(self.alerts),
            fits=[f for f in self.fits if f["cutoff"] <= last],
            upsell_scores=cut(self.upsell_scores),
            gb_scores=cut(self.gb_scores),
            gb_alerts=cut(self.gb_alerts),
            gb_fits=[f for f in self.gb_fits if f["cutoff"] <= last],
            gb_upsell_scores=cut(self.gb_upsell_scores),
        )


class _Alerting:
    """One method's alerts, as the scan raises them: the week's highest-ranked accounts at or above
    the model's floor, while the kind's share of the budget over 4 weeks allows, none alerted in the
    last REST_WEEKS weeks."""

    def __init__(self, out: list[tuple[int, date, str]]) -> None:
        self.out = out
        self.last: dict[tuple[int, str], date] = {}
        self.raised: dict[str, dict[date, int]] = {"churn": {}, "upsell": {}}  # per kind and scored day

    def week(
        self, kind: str, day: date, ids: np.ndarray, p: np.ndarray, rate: float, floor: float | None
    ) -> None:
        room = before = allowance(rate, weeks_back(day, self.raised[kind].items()))  # as budget.room
        for i in np.argsort(-p, kind="stable"):
            a, v = int(ids[i]), float(p[i])
            if room <= 0 or floor is None or v < floor:
                break
            prev = self.last.get((a, kind))
            if prev is not None and (day - prev).days < 7 * REST_WEEKS:
                continue
            self.last[(a, kind)] = day
            self.out.append((a, day, kind))
            room -= 1
        self.raised[kind][day] = self.raised[kind].get(day, 0) + before - room


def _fit_kinds(
    models: dict[str, Scoring | None],
    out: Replay,
    targets: dict[str, tuple[dict[int, list[date]], int]],
    frames: list[Frame],
    day: date,
    share: dict[str, float],
    *,
    min_events: int,
    class_weight: str | None,
) -> None:
    """Refit each kind's model on the weeks before ``day``; a kind without enough history has none
    until a later refit can fit one, and its first reason is kept for the report."""
    for kind, (events, horizon) in targets.items():
        try:
            models[kind] = model = train(
                kind,
                frames,
                events,
                horizon,
                day,
                budget=share[kind],
                min_events=min_events,
                class_weight=class_weight,
            )
            out.fits.append({"kind": kind, "cutoff": day, "last_week": model.training["last_week"]})
        except NotEnoughHistory as exc:
            models[kind] = None
            out.skipped.setdefault(kind, str(exc))


def _fit_boosted(
    gb: dict[str, Scoring | None],
    models: dict[str, Scoring | None],
    out: Replay,
    targets: dict[str, tuple[dict[int, list[date]], int]],
    frames: list[Frame],
    day: date,
    share: dict[str, float],
    min_events: int,
) -> None:
    """Each kind's boosted model on its regression's rows at the same refit, so the two compare
    fairly; none for a kind the regression could not be fitted for either (the same rows)."""
    for kind, (events, horizon) in targets.items():
        if models.get(kind) is None:
            gb[kind] = None
            continue
        gb[kind] = model = train(
            kind,
            frames,
            events,
            horizon,
            day,
            budget=share[kind],
            min_events=min_events,
            algorithm="gradient_boosting",
        )
        out.gb_fits.append({"kind": kind, "cutoff": day, "last_week": model.training["last_week"]})


def _score_week(
    out: Replay,
    frame: Frame,
    models: dict[str, Scoring | None],
    gb: dict[str, Scoring | None],
    share: dict[str, float],
    alerting: _Alerting,
    gb_alerting: _Alerting,
) -> None:
    """One scored week: each kind's scores and alerts, and the boosted replay's beside them (each
    kind's boosted model in place of its regression; upsell without one alerts as the regression)."""
    day = frame.day
    ids = frame.account_ids
    for kind in ("churn", "upsell"):
        model = models.get(kind)
        if model is None or not len(ids):
            continue
        rate = len(ids) * share[kind] / 100
        p = model.proba(model.matrix(frame))
        alerting.week(kind, day, ids, p, rate, model.floor)
        scores, gb_scores = (
            (out.scores, out.gb_scores) if kind == "churn" else (out.upsell_scores, out.gb_upsell_scores)
        )
        scores += [(int(a), day, float(v)) for a, v in zip(ids, p, strict=True)]
        boosted = gb.get(kind)
        if boosted is not None:
            g = boosted.proba(boosted.matrix(frame))
            gb_scores += [(int(a), day, float(v)) for a, v in zip(ids, g, strict=True)]
            gb_alerting.week(kind, day, ids, g, rate, boosted.floor)
        elif kind != "churn":
            gb_alerting.week(kind, day, ids, p, rate, model.floor)


def walk_forward(
    history: History,
    days: Sequence[date],
    churns: dict[int, list[date]],
    upgrades: dict[int, list[date]],
    *,
    budget: float = DEFAULT_BUDGET,
    upsell_share: float = UPSELL_SHARE,
    refit_weeks: int = REFIT_WEEKS,
    min_events: int = MIN_EVENTS,
    gradient_boosting: bool = False,
    class_weight: str | None = None,
) -> Replay:
    """Score each of ``days`` (days of ``history``'s weeks) with models trained strictly before it;
    with ``gradient_boosting``, boosted churn and upsell models too, fitted on the same rows at the
    same refits."""
    t0 = timer.perf_counter()
    k_of = {history.anchor - timedelta(days=7 * k): k for k in range(history.weeks)}
    frames = [history.frame(k) for k in range(history.weeks)]
    frames = frames[::-1]  # oldest first
    t1 = timer.perf_counter()
    by_day = {f.day: f for f in frames}
    share = {"churn": budget * (1 - upsell_share), "upsell": budget * upsell_share}
    targets = {"churn": (churns, CHURN_HORIZON), "upsell": (upgrades, UPSELL_HORIZON)}
    models: dict[str, Scoring | None] = {}
    gb: dict[str, Scoring | None] = {}
    last_fit: date | None = None
    out = Replay()
    alerting, gb_alerting = _Alerting(out.alerts), _Alerting(out.gb_alerts)
    fit_seconds = gb_seconds = 0.0
    for day in sorted(days):
        if day not in k_of:
            raise ValueError(f"{day.isoformat()} is not one of the history's weeks")
        if last_fit is None or (day - last_fit).days >= 7 * refit_weeks:
            tf = timer.perf_counter()
            _fit_kinds(
                models, out, targets, frames, day, share, min_events=min_events, class_weight=class_weight
            )
            fit_seconds += timer.perf_counter() - tf
            if gradient_boosting:
                tg = timer.perf_counter()
                _fit_boosted(gb, models, out, targets, frames, day, share, min_events)
                gb_seconds += timer.perf_counter() - tg
            last_fit = day
        _score_week(out, by_day[day], models, gb, share, alerting, gb_alerting)
    out.seconds = {
        "features": t1 - t0,
        "training": fit_seconds,
        **({"gradient_boosting": gb_seconds} if gradient_boosting else {}),
        "total": timer.perf_counter() - t0,
    }
    return out


# --- the figures --------------------------------------------------------------------------------------


def figures(
    scores: Sequence[tuple[int, date, float]],
    alerts: Sequence[tuple[int, date, str]],
    churns: dict[int, list[date]],
    upgrades: dict[int, list[date]],
    first: date,
    last: date,
    upsell_scores: Sequence[tuple[int, date, float]] = (),
) -> dict[str, Any]:
    """issue 10's table for one method (model/metrics.py's ``alert_figures``), over the account-weeks
    ``scores`` holds between first and last (higher score = more at risk), and how ``upsell_scores``
    (higher = likelier to upgrade) rank upgrades within UPSELL_HORIZON days (None without them)."""
    rows = [(a, d, s) for a, d, s in scores if first <= d <= last]
    inside = [(a, d, k) for a, d, k in alerts if first <= d <= last]
    up_rows = [(a, d, s) for a, d, s in upsell_scores if first <= d <= last]
    return {
        **alert_figures(rows, inside, churns, upgrades, [(first, last)]),
        **ranking(up_rows, upgrades, UPSELL_HORIZON, "upsell"),
    }


def tradeoff(
    scores: Sequence[tuple[int, date, float]],
    churns: dict[int, list[date]],
    first: date,
    last: date,
    points: int = 14,
) -> list[dict[str, float]]:
    """Churns caught 7-90 days ahead against alerts per 100 accounts per week, one point per
    threshold (from the top 0.2 % of account-weeks to the top 40 %): at or above the threshold, then
    not again for 13 weeks (the scan's rest; no weekly cap, so the curve shows the threshold alone).
    The curve the backtest PNG draws: a method whose curve lies higher catches more churns for the
    same number of alerts."""
    rows = sorted((a, d, s) for a, d, s in scores if first <= d <= last)
    if not rows:
        return []
    lo, hi = first + timedelta(days=CHURN_HORIZON), last + timedelta(days=7)
    population = [(a, d) for a, v in churns.items() for d in v if lo <= d <= hi]
    vals = np.array([s for _, _, s in rows])
    out = []
    for share in np.geomspace(0.002, 0.4, points):
        threshold = float(np.quantile(vals, 1 - share))
        alerts: dict[int, list[date]] = {}
        n, prev = 0, (None, None)
        for a, d, s in rows:
            if s < threshold:
                continue
            if prev[0] == a and prev[1] is not None and (d - prev[1]).days < 7 * REST_WEEKS:
                continue
            alerts.setdefault(a, []).append(d)
            n, prev = n + 1, (a, d)
        caught = caught_ahead(population, alerts, 7, CHURN_HORIZON)
        out.append(
            {
                "threshold": threshold,
                "alerts_per_100_week": n / len(rows) * 100,
                "churn_recall_7_90d": caught.recall or 0.0,
            }
        )
    return out


def calibration(
    scores: Sequence[tuple[int, date, float]],
    churns: dict[int, list[date]],
    horizon: int = CHURN_HORIZON,
) -> dict[str, Any]:
    """Predicted against observed 90-day churn (or, given upgrades, upgrade), overall and by fifth of
    predicted risk, with the expected calibration error (ECE: over ten equal-count bins of predicted
    risk, the mean gap between predicted and observed, weighted by rows) and the Brier score: a
    reliability measure rather than taking the regression's probabilities on trust."""
    if not scores:
        return {}
    p = np.array([s for _, _, s in scores])
    y = np.array([any(1 <= (c - d).days <= horizon for c in churns.get(a, ())) for a, d, _ in scores])
    order = np.argsort(p)
    bins = np.array_split(order, 5)
    return {
        "predicted": float(p.mean()),
        "observed": float(y.mean()),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(
            sum(len(b) * abs(p[b].mean() - y[b].mean()) for b in np.array_split(order, 10) if len(b))
        )
        / len(p),
        "by_fifth": [
            {"predicted": float(p[b].mean()), "observed": float(y[b].mean())} for b in bins if len(b)
        ],
    }


# --- which algorithm scores ------------------------------------------------------------------------

REGRESSION, BOOSTING = "logistic_regression", "gradient_boosting"
# threshold-free, as alerts/budget._BEATS compares model and rules: each algorithm alerts at its own
# threshold, so recall at the budget would compare thresholds as much as rankings
CHOICE_FIGURES = ("auc_30d", "top_decile_lift_30d")
# the upsell model's, on the same terms: how its scores rank upgrades within UPSELL_HORIZON days
UPSELL_CHOICE_FIGURES = ("upsell_auc_90d", "upsell_top_decile_lift_90d")


def choose(
    regression: dict[str, Any] | None,
    boosted: dict[str, Any] | None,
    keys: Sequence[str] = CHOICE_FIGURES,
    *,
    tried: bool = False,
) -> dict[str, Any]:
    """Gradient boosting only when its backtest beats the regression's on every one of ``keys``
    (CHOICE_FIGURES for churn, UPSELL_CHOICE_FIGURES for upsell) on the same weeks; otherwise the
    explainable default. Returns the choice, why, and the figures. ``tried``: boosting is a candidate,
    so no boosted figures means the replay fitted none (too few events at its refits), not the settings."""
    if not boosted:
        return {"algorithm": REGRESSION, "why": "not_replayed" if tried else "not_compared"}
    figs = {k: {REGRESSION: (regression or {}).get(k), BOOSTING: boosted.get(k)} for k in keys}
    out: dict[str, Any] = {"figures": figs}
    if any(v is None for f in figs.values() for v in f.values()):
        return {"algorithm": REGRESSION, "why": "no_figures", **out}
    if all(f[BOOSTING] > f[REGRESSION] for f in figs.values()):
        return {"algorithm": BOOSTING, "why": "beats_regression", **out}
    return {"algorithm": REGRESSION, "why": "regression_better", **out}


# --- the model-or-rules switch -----------------------------------------------------------------------

# per model kind: the threshold-free figures alerts/budget.decide compares, model against rules, and the
# days after a scored week its outcome needs (auc_30d and top_decile_lift_30d label churn within 30
# days, model/metrics.alert_figures; the upsell lift counts upgrades within 90)
SWITCH: dict[str, tuple[tuple[str, ...], int]] = {
    "churn": (("auc_30d", "top_decile_lift_30d"), AUC_HORIZON),
    "upsell": (("upsell_lift_90d",), UPSELL_HORIZON),
}


def known_through(anchor: date, days: int) -> date:
    """The last scored Sunday whose outcome ``days`` days on is known with data through ``anchor``."""
    return anchor - timedelta(days=7 * (days // 7 + 1))


def _switch_part(
    model: dict[str, Any], rules: dict[str, Any], keys: Sequence[str], lo: date, hi: date
) -> dict[str, Any]:
    """One kind's part of the stored backtest's ``switch``: its weeks and both methods' figures."""
    return {
        "first": lo.isoformat(),
        "last": hi.isoformat(),
        "model": {k: model.get(k) for k in keys},
        "rules": {k: rules.get(k) for k in keys},
    }


# --- the product's backtest ----------------------------------------------------------------------------


@dataclass
class Backtest:
    first: date
    last: date
    anchor: date
    budget: float
    accounts: int
    model: dict[str, Any]
    rules: dict[str, Any]
    calibration: dict[str, Any]
    replay: Replay
    gradient_boosting: dict[str, Any] | None = None
    curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # method -> ``tradeoff``
    # ``model`` holds the figures of the algorithm chosen (``choice``); with gradient boosting
    # replayed, the regression's are here, its own in ``gradient_boosting``
    regression: dict[str, Any] | None = None
    choice: dict[str, Any] = field(default_factory=lambda: choose(None, None))
    # the upsell model's choice, made as the churn model's on UPSELL_CHOICE_FIGURES; ``model`` holds
    # its upsell figures (alerts, ranking) beside the chosen churn model's
    upsell_choice: dict[str, Any] = field(default_factory=lambda: choose(None, None))
    # per model kind, what the switch compares (``SWITCH``): the weeks and both methods' figures
    switch: dict[str, Any] = field(default_factory=dict)

    @property
    def algorithm(self) -> str:
        return str(self.choice["algorithm"])

    @property
    def upsell_algorithm(self) -> str:
        return str(self.upsell_choice["algorithm"])

    def as_json(self) -> dict[str, Any]:
        return {
            "weeks": {
                "first": self.first.isoformat(),
                "last": self.last.isoformat(),
                "data_through": self.anchor.isoformat(),
            },
            "budget_per_100_accounts_week": self.budget,
            "model": self.model,
            "rules": self.rules,
            "gradient_boosting": self.gradient_boosting,
            "logistic_regression": self.regression,
            "algorithm": self.choice,
            "upsell_algorithm": self.upsell_choice,
            "calibration": self.calibration,
            "switch": self.switch,
            "curves": self.curves,
            "refits": len(self.replay.fits),
            "no_model": self.replay.skipped,
            "seconds": {k: round(v, 2) for k, v in self.replay.seconds.items()},
        }


def history_weeks(session: Session, anchor: date, rules: HealthRules) -> int:
    """Weeks from the first day with usage signals to ``anchor``."""
    first = session.scalar(select(func.min(Signal.day)).where(Signal.metric == rules.activity_metric))
    if first is None:
        return 0
    first = first if isinstance(first, date) else date.fromisoformat(str(first))
    return max(0, (anchor - first).days // 7 + 1)


def needed_weeks() -> int:
    return CHURN_HORIZON // 7 + 1 + MIN_WEEKS


def _window(session: Session, as_of: date, rules: HealthRules) -> tuple[date, int, date]:
    """The history's anchor (the Sunday of the last data), its weeks, and the last week whose 90-day
    outcome is known; refused when too short to train and then see an outcome."""
    data = data_through(session, as_of, rules)
    if data.through is None:
        raise NotEnoughHistory(f"no usage signals up to {as_of.isoformat()}: ingest signals first")
    anchor = last_sunday(data.day)
    weeks = history_weeks(session, anchor, rules)
    eval_last = known_through(anchor, CHURN_HORIZON)
    if weeks < needed_weeks() + 1:
        raise NotEnoughHistory(
            f"the backtest needs {needed_weeks() + CHURN_HORIZON // 7 + 1} weeks of usage history (training "
            f"weeks, then {CHURN_HORIZON} days to see each scored week's outcome); has {weeks}"
        )
    return anchor, weeks, eval_last


def _replay_days(anchor: date, weeks: int, start: date | None, last: date, outcome: int) -> list[date]:
    """The weeks to replay: from ``start``'s Sunday (default: the first) to ``last``, the last whose
    ``outcome``-day outcome is known."""
    all_days = sorted(anchor - timedelta(days=7 * k) for k in range(weeks))
    first = start - timedelta(days=1) if start else all_days[0]  # a Monday scores up to its Sunday
    days = [d for d in all_days if first <= d <= last]
    if not days:
        raise NotEnoughHistory(_no_outcome(first, last, outcome))
    return days


def _no_outcome(first: date, last: date, outcome: int) -> str:
    return (
        f"no week from {first.isoformat()} has a known {outcome}-day outcome yet; the last with one is "
        f"{last.isoformat()}"
    )


@dataclass
class _Compared:
    regression: dict[str, Any]  # both kinds by the regression
    boosted: dict[str, Any] | None  # both by gradient boosting, where replayed (None: churn was not)
    model: dict[str, Any]  # each kind by the algorithm chosen for it
    choice: dict[str, Any]  # churn's ``choose``
    upsell_choice: dict[str, Any]  # upsell's


def _compare(
    replay: Replay,
    churns: dict[int, list[date]],
    ups: dict[int, list[date]],
    lo: date,
    hi: date,
    gradient_boosting: bool,
) -> _Compared:
    """The regression's figures, the boosted models' (None when not replayed or it scored nothing),
    and per kind which of the two scores (``choose``), with both calibration errors when compared.
    The kinds are chosen apart: each kind's alerts are budgeted, rested and counted on their own, so
    the figures of a mix are those of its churn side and its upsell side."""
    reg_fig = figures(replay.scores, replay.alerts, churns, ups, lo, hi, replay.upsell_scores)
    gb_fig = None
    if gradient_boosting and replay.gb_scores:
        gb_fig = figures(replay.gb_scores, replay.gb_alerts, churns, ups, lo, hi, replay.gb_upsell_scores)
    choice = choose(reg_fig, gb_fig, tried=gradient_boosting)
    if gb_fig:
        choice["calibration_ece"] = {
            REGRESSION: calibration(replay.scores, churns).get("ece"),
            BOOSTING: calibration(replay.gb_scores, churns).get("ece"),
        }
    up_gb_fig = gb_fig if gb_fig and replay.gb_upsell_scores else None
    upsell_choice = choose(reg_fig, up_gb_fig, UPSELL_CHOICE_FIGURES, tried=gradient_boosting)
    if up_gb_fig:
        upsell_choice["calibration_ece"] = {
            REGRESSION: calibration(replay.upsell_scores, ups, UPSELL_HORIZON).get("ece"),
            BOOSTING: calibration(replay.gb_upsell_scores, ups, UPSELL_HORIZON).get("ece"),
        }
    churn_gb = bool(gb_fig) and choice["algorithm"] == BOOSTING
    up_gb = bool(up_gb_fig) and upsell_choice["algorithm"] == BOOSTING
    if churn_gb == up_gb:
        model_fig = gb_fig if churn_gb and gb_fig else reg_fig
    else:
        c_alerts, u_alerts = (
            (replay.gb_alerts if churn_gb else replay.alerts),
            (replay.gb_alerts if up_gb else replay.alerts),
        )
        model_fig = figures(
            replay.gb_scores if churn_gb else replay.scores,
            [x for x in c_alerts if x[2] == "churn"] + [x for x in u_alerts if x[2] == "upsell"],
            churns,
            ups,
            lo,
            hi,
            replay.gb_upsell_scores if up_gb else replay.upsell_scores,
        )
    return _Compared(reg_fig, gb_fig, model_fig, choice, upsell_choice)


def _rule_scores(
    session: Session,
    history: History,
    rules: HealthRules,
    replay: Replay,
    scored_days: list[date],
    anchor: date,
    weeks: int,
) -> list[tuple[int, date, float]]:
    """The rules on the model's account-weeks: the health score then (accounts as the files described
    them), negated so that higher = more at risk as for the model."""
    rule_scores: list[tuple[int, date, float]] = []
    by_week: dict[date, set[int]] = {}
    for a, d, _ in replay.scores:
        by_week.setdefault(d, set()).add(a)
    k_of = {anchor - timedelta(days=7 * k): k for k in range(weeks)}
    for d in scored_days:
        frame = history.frame(k_of[d])
        seats = frame.column("seats")
        to_renewal = frame.column("days_to_renewal")
        usage = usage_by_account(session, d, rules, only=by_week[d])
        for i, a in enumerate(frame.account_ids):
            u = usage.get(int(a))
            if u is None or int(a) not in by_week[d]:
                continue
            renewal = None if np.isnan(to_renewal[i]) else d + timedelta(days=int(to_renewal[i]))
            s, _, _ = score(
                u,
                seats=None if np.isnan(seats[i]) else int(seats[i]),
                renewal_date=renewal,
                as_of=d,
                rules=rules,
            )
            rule_scores.append((int(a), d, -float(s)))
    return rule_scores


def _rule_alerts(session: Session, lo: date, hi: date) -> list[tuple[int, date, str]]:
    """The alerts the rules' scans stored over the scored weeks, as (account, day, churn | upsell)."""
    stored = session.execute(
        select(Alert.account_id, Alert.as_of, Alert.kind).where(Alert.as_of >= lo, Alert.as_of <= hi)
    )
    return [(a, d, "churn" if k == CHURN else "upsell") for a, d, k in stored]


def run(
    session: Session,
    as_of: date,
    rules: HealthRules,
    *,
    start: date | None = None,
    budget: float = DEFAULT_BUDGET,
    min_events: int = MIN_EVENTS,
    gradient_boosting: bool = False,
    require_outcome: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Backtest:
    """`app.py model backtest`: Mondays from ``start`` (default: the first the model could score) up to
    the last whose 30-day outcome is known, model against rules on the same account-weeks; the report's
    figures on those whose 90-day outcome is known, the switch's (``SWITCH``) each on its own horizon.
    ``require_outcome``: refuse a history with no week of known 90-day outcome yet (the CLI); without
    it (the scan's training) such a backtest holds the churn switch's figures alone."""
    anchor, weeks, eval_last = _window(session, as_of, rules)
    history = History(session, anchor, weeks, activity=rules.activity_metric, names=rules.metric_names)
    churns, ups = churn_dates(session), upgrade_dates(session)
    soonest = SWITCH["churn"][1]  # the switch's shortest horizon: the replay's last week has it known
    days = _replay_days(anchor, weeks, start, known_through(anchor, soonest), soonest)
    if require_outcome and days[0] > eval_last:  # no report possible: say so before replaying
        raise NotEnoughHistory(_no_outcome(days[0], eval_last, CHURN_HORIZON))
    if progress:
        progress(f"replaying {len(days)} weeks ({days[0].isoformat()} to {days[-1].isoformat()})")
    whole = walk_forward(
        history, days, churns, ups, budget=budget, min_events=min_events, gradient_boosting=gradient_boosting
    )
    if not whole.scores:
        raise NotEnoughHistory(whole.skipped.get("churn", "no week could be scored"))
    scored_all = sorted({d for _, d, _ in whole.scores})
    report_days = [d for d in scored_all if d <= eval_last]
    if not report_days and require_outcome:
        raise NotEnoughHistory(_no_outcome(scored_all[0], eval_last, CHURN_HORIZON))
    rule_scores_all = _rule_scores(session, history, rules, whole, scored_all, anchor, weeks)
    if not report_days:  # the scan's training, before any 90-day outcome: the churn switch alone
        bt = Backtest(scored_all[0], scored_all[-1], anchor, budget, len(history.ids), {}, {}, {}, whole)
        # no 90-day figures to choose the algorithm on yet: the regression
        why = "no_figures" if gradient_boosting else "not_compared"
        bt.choice, bt.upsell_choice = (
            {"algorithm": REGRESSION, "why": why},
            {"algorithm": REGRESSION, "why": why},
        )
        bt.switch = {"churn": _churn_switch(whole.scores, rule_scores_all, churns, ups)}
        return bt
    lo, hi = report_days[0], report_days[-1]
    replay = whole.until(hi)
    c = _compare(replay, churns, ups, lo, hi, gradient_boosting)
    boosted = c.choice["algorithm"] == BOOSTING and c.boosted is not None
    chosen = replay.gb_scores if boosted else replay.scores
    rule_scores = [r for r in rule_scores_all if r[1] <= hi]
    healthy = [(a, d, -s) for a, d, s in rule_scores]  # the rules rank upsell by health, highest first
    rules_fig = figures(rule_scores, _rule_alerts(session, lo, hi), churns, ups, lo, hi, healthy)
    switch = {
        "churn": _churn_switch(whole.gb_scores if boosted else whole.scores, rule_scores_all, churns, ups),
        "upsell": _switch_part(c.model, rules_fig, SWITCH["upsell"][0], lo, hi),
    }
    return Backtest(
        lo,
        hi,
        anchor,
        budget,
        len(history.ids),
        c.model,
        rules_fig,
        calibration(chosen, churns),
        replay,
        c.boosted,
        {
            "model": tradeoff(chosen, churns, lo, hi),
            "rules": tradeoff(rule_scores, churns, lo, hi),
        },
        c.regression if c.boosted else None,
        c.choice,
        c.upsell_choice,
        switch,
    )


def _churn_switch(
    model: Sequence[tuple[int, date, float]],
    rules: Sequence[tuple[int, date, float]],
    churns: dict[int, list[date]],
    ups: dict[int, list[date]],
) -> dict[str, Any]:
    """The churn switch's figures over every replayed week (each has its 30-day outcome known)."""
    days = sorted({d for _, d, _ in model})
    lo, hi = days[0], days[-1]
    m, r = figures(model, [], churns, ups, lo, hi), figures(rules, [], churns, ups, lo, hi)
    return _switch_part(m, r, SWITCH["churn"][0], lo, hi)
