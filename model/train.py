"""Training: a scikit-learn logistic regression on log-scaled, standardized features, kept as plain numbers.

Why a linear model: each driver's contribution is its coefficient times its standardized deviation
from the training mean, so a card can say "active users per seat 0.18 vs 0.55 typical" and the
contributions add up exactly to the score (``LinearModel.contributions``). Why no class weights and
no extra calibration step: an unweighted logistic regression is fitted by log loss, so its
probabilities are close to calibrated already (the backtest prints predicted against observed, by
fifth of risk: 3.5 % predicted vs 4.8 % observed on a 300-account book, slightly low because the
newest 13 weeks cannot be trained on). Balanced class weights, backtested on the same weeks, ranked
worse (AUC 0.84 vs 0.87) and predicted 25 % for 5 % observed; a CalibratedClassifierCV would need
held-out weeks the walk-forward cannot spare, and would break "contributions add up to the score".

Training rows are weekly snapshots of the features (model/features.py), strictly before the week
scored, and only weeks whose outcome window had passed (model/labels.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

import numpy as np

from model.features import Feature, Frame
from model.labels import known, within

MIN_EVENTS = 20  # churns (upgrades) in weeks with a known outcome before a model is trusted
MIN_WEEKS = 4  # weeks with a known outcome
# An account the model alerted is not alerted by it again for 13 weeks: the alert's claim is "churns
# (upgrades) within 90 days", so a second one inside that span tells the team nothing new and takes a
# slot another account needs. Measured on the benchmark's books at the same budget: 52 % of churns
# caught with a 4-week rest, 66 % with 13 weeks (README, "Alert quality").
REST_WEEKS = 13
# An alert must be at least this many times as likely to come true as an average account-week of the
# training history (its base rate): below that a card is closer to noise than to news. Between this
# floor and the week's cap the scan takes the highest-ranked accounts, so a quiet week does not leave
# the budget unspent while the stored threshold (the one that met the budget on the training weeks)
# would (README, "Alert quality").
LIFT_FLOOR = 2.0
C = 0.5  # inverse regularization; ~40 correlated features on a few thousand rows


class NotEnoughHistory(Exception):
    """Too few outcomes to learn from: the message says how much is needed and how much there is."""


def _log1p_where(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=float, copy=True)
    out[:, mask] = np.log1p(np.clip(out[:, mask], 0, None))
    return out


class Scoring:
    """What the scan, ``model explain`` and the store use of a fitted model, whatever its algorithm
    (this LinearModel, model/boosted.BoostedModel): ``decision`` (the logit) and ``contributions``
    (per feature, adding up with ``intercept`` to the logit) come from the subclass."""

    algorithm: ClassVar[str]
    kind: str
    features: list[Feature]
    metrics: list[str]
    plans: list[str]
    typical: np.ndarray
    typical_by_plan: dict[str, list[float]]
    threshold: float | None
    budget: float | None
    training: dict[str, Any]
    intercept: float  # a number (LinearModel) or a property (BoostedModel)

    def decision(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def contributions(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def base_rate(self) -> float | None:
        """The share of training account-weeks whose outcome came true (churned / upgraded in 90 days)."""
        rows, pos = self.training.get("rows"), self.training.get("positives")
        return pos / rows if rows and pos is not None else None

    @property
    def floor(self) -> float | None:
        """The probability an account needs for this model to alert it: LIFT_FLOOR x the base rate,
        or halfway from the base rate to certainty when that is lower (a book where half the accounts
        churn would otherwise need a probability over 1); the stored threshold for a model trained
        without its counts or without a single outcome."""
        base = self.base_rate
        if not base or self.training.get("class_weight"):  # weighted classes: not probabilities
            return self.threshold
        return min(LIFT_FLOOR * base, (1 + base) / 2)

    def proba(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-self.decision(x)))

    def matrix(self, frame: Frame) -> np.ndarray:
        """The frame's columns in this model's order (a frame built for its metrics and plans)."""
        keys = [f.key for f in frame.features]
        return frame.x[:, [keys.index(f.key) for f in self.features]]

    def typical_for(self, plan: str | None) -> np.ndarray:
        t = self.typical_by_plan.get(plan or "")
        return np.array(t, dtype=float) if t is not None else self.typical


@dataclass
class LinearModel(Scoring):
    """A fitted model as numbers: scoring, explaining and storing need nothing else (no pickle)."""

    algorithm: ClassVar[str] = "logistic_regression"

    kind: str  # churn | upsell
    features: list[Feature]
    metrics: list[str]  # the usage metrics and plans its features were built for
    plans: list[str]
    fill: np.ndarray  # per feature, after log1p: the training mean, for unknown values
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    typical: np.ndarray  # raw training median per feature
    typical_by_plan: dict[str, list[float]] = field(default_factory=dict)
    threshold: float | None = None  # probability at or above which an account is alerted
    budget: float | None = None  # alerts per 100 accounts per week the threshold was set for
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> np.ndarray:
        return np.array([f.log for f in self.features], dtype=bool)

    def standardized(self, x: np.ndarray) -> np.ndarray:
        z = _log1p_where(x, self.log)
        z = np.where(np.isnan(z), self.fill, z)
        return (z - self.mean) / self.scale

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row and feature: coefficient x standardized deviation; a row's sum + intercept = its logit."""
        return self.standardized(x) * self.coef

    def decision(self, x: np.ndarray) -> np.ndarray:
        return self.contributions(x).sum(axis=1) + self.intercept


@dataclass(frozen=True)
class Driver:
    feature: Feature
    value: float | None
    typical: float | None
    contribution: float  # in logit units; > 0 raises the probability

    def text(self, locale: str = "en", plan: str | None = None) -> str:
        f = self.feature
        unit = f.unit(locale)
        if unit.startswith(("/", "／")):  # "per day" is in the name already
            unit = ""
        if unit and not locale.startswith("ja") and unit != "%":
            unit = f" {unit}"
        value = _fmt(self.value) + unit
        if f.key.startswith("plan."):  # a one-hot plan moves the score whether the account is on it or not
            on_it = bool(self.value)
            if locale.startswith("ja"):
                return f.label(locale) + ("" if on_it else "以外")
            return f.label(locale) if on_it else f.label(locale).replace("on the", "not on the", 1)
        if locale.startswith("ja"):
            where = f"{plan}プランでは" if plan else ""
            return f"{f.label(locale)}：{value}（{where}通常{_fmt(self.typical)}{unit}）"
        on = f" on {plan}" if plan else ""
        return f"{f.label(locale)}: {value} vs {_fmt(self.typical)} typical{on}"

    def as_json(self, locale: str = "en", plan: str | None = None) -> dict[str, Any]:
        return {
            "feature": self.feature.key,
            "value": None if self.value is None else round(self.value, 4),
            "typical": None if self.typical is None else round(self.typical, 4),
            "contribution": round(self.contribution, 4),
            "text": self.text(locale, plan),
        }


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if float(v).is_integer():
        return f"{int(v):,}"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def drivers(model: Scoring, x_row: np.ndarray, plan: str | None, top: int | None = 3) -> list[Driver]:
    """The features that move this account's score most toward the outcome (all, by size, with top=None)."""
    contrib = model.contributions(x_row.reshape(1, -1))[0]
    typical = model.typical_for(plan)
    order = np.argsort(-contrib) if top is not None else np.argsort(-np.abs(contrib))
    out = []
    for j in order:
        if top is not None and (len(out) >= top or contrib[j] <= 0):
            break
        v = float(x_row[j])
        out.append(
            Driver(
                model.features[j],
                None if math.isnan(v) else v,
                None if math.isnan(typical[j]) else float(typical[j]),
                float(contrib[j]),
            )
        )
    return out


# --- training data -------------------------------------------------------------------------------------


@dataclass
class Rows:
    x: np.ndarray
    y: np.ndarray
    day: np.ndarray  # the week's day per row (numpy datetime64[D])
    account: np.ndarray
    plans: list[str | None]
    weeks: int
    events: int  # distinct accounts with a positive label


def rows_for(frames: Sequence[Frame], events: dict[int, list[date]], horizon: int, cutoff: date) -> Rows:
    """Every account-week before ``cutoff`` whose ``horizon``-day outcome is known at the cutoff."""
    use = [f for f in frames if f.day < cutoff and known(f.day, horizon, cutoff) and len(f.account_ids)]
    if not use:
        empty = np.zeros((0, frames[0].x.shape[1] if frames else 0))
        return Rows(empty, np.zeros(0, bool), np.zeros(0, "datetime64[D]"), np.zeros(0, np.int64), [], 0, 0)
    ys = [within(f.account_ids, f.day, events, horizon) for f in use]
    y = np.concatenate(ys)
    account = np.concatenate([f.account_ids for f in use])
    return Rows(
        np.vstack([f.x for f in use]),
        y,
        np.concatenate([np.full(len(f.account_ids), np.datetime64(f.day, "D")) for f in use]),
        account,
        [p for f in use for p in f.plans],
        len(use),
        len(set(account[y].tolist())),
    )


def check(rows: Rows, kind: str, horizon: int, min_events: int = MIN_EVENTS) -> None:
    what = "churn events" if kind == "churn" else "upgrades"
    if rows.events < min_events or rows.weeks < MIN_WEEKS:
        raise NotEnoughHistory(
            f"the {kind} model needs {min_events} {what} in at least {MIN_WEEKS} weeks whose {horizon}-day "
            f"outcome is known; has {rows.events} in {rows.weeks} week{'s' if rows.weeks != 1 else ''} "
            f"(a week's outcome is known {horizon} days after it)"
        )


def typical_values(rows: Rows, plans: list[str]) -> tuple[np.ndarray, dict[str, list[float]]]:
    """The raw training median per feature, overall and per plan with 30 rows or more: the "typical"
    a driver is read against."""
    import warnings

    with np.errstate(all="ignore"), warnings.catch_warnings(action="ignore"):  # an all-unknown column
        typical = np.nanmedian(rows.x, axis=0)
        by_plan: dict[str, list[float]] = {}
        plan_arr = np.array([p or "" for p in rows.plans])
        for p in plans:
            sel = plan_arr == p
            if sel.sum() >= 30:
                by_plan[p] = [float(v) for v in np.nanmedian(rows.x[sel], axis=0)]
    return typical, by_plan


def fit(
    kind: str,
    rows: Rows,
    features: list[Feature],
    metrics: list[str],
    plans: list[str],
    *,
    class_weight: str | None = None,
) -> LinearModel:
    """A scikit-learn Pipeline (log1p where sensible, mean fill, StandardScaler, LogisticRegression),
    read back into a LinearModel whose scores equal the pipeline's."""
    pipe = pipeline(features, class_weight=class_weight).fit(rows.x, rows.y)
    fill, scaler, lr = pipe.named_steps["fill"], pipe.named_steps["scale"], pipe.named_steps["lr"]
    typical, by_plan = typical_values(rows, plans)
    return LinearModel(
        kind=kind,
        features=features,
        metrics=metrics,
        plans=plans,
        fill=np.asarray(fill.statistics_, dtype=float),
        mean=np.asarray(scaler.mean_, dtype=float),
        scale=np.asarray(scaler.scale_, dtype=float),
        coef=np.asarray(lr.coef_[0], dtype=float),
        intercept=float(lr.intercept_[0]),
        typical=typical,
        typical_by_plan=by_plan,
        training=training_record(rows, class_weight=class_weight),
    )


def training_record(rows: Rows, **extra: Any) -> dict[str, Any]:
    """What a stored model says of its training rows: the cold start, the floor's base rate and
    ``model train``'s line read it, whatever the algorithm."""
    return {
        "rows": len(rows.y),
        "weeks": rows.weeks,
        "events": rows.events,
        "positives": int(rows.y.sum()),
        "last_week": str(rows.day.max()) if len(rows.day) else None,
        **extra,
    }


def pipeline(features: list[Feature], *, class_weight: str | None = None) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    mask = np.array([f.log for f in features], dtype=bool)
    return Pipeline(
        [
            ("log", FunctionTransformer(_log1p_where, kw_args={"mask": mask})),
            ("fill", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(C=C, class_weight=class_weight, max_iter=3000)),
        ]
    )


# --- the alert budget ------------------------------------------------------------------------------------

# The budget is an average over a rolling 4 weeks, not a weekly ceiling rounded down: with 300
# accounts and 2 alerts per 100 a week, upsell's 25 % is 1.5 a week, which a weekly cap rounded down
# makes 1 (a third of its share lost) and a cap rounded up makes 2. Over 4 weeks it is 6, at most 2
# in any one week, so a quiet week leaves room for the next one and a busy week cannot take a month's.
WINDOW_WEEKS = 4


def week_cap(rate: float) -> int:
    """At most this many new alerts in any 7 days for a kind allowed ``rate`` a week on average: the
    rate rounded up, and one for a kind with any share (a 40-account team's upsell is 0.2 a week)."""
    return max(math.ceil(rate - 1e-9), 1) if rate > 0 else 0


def window_cap(rate: float) -> int:
    """At most this many new alerts in any WINDOW_WEEKS weeks: the rate times the window, rounded
    down (never over the budget on average), and one for a kind with any share."""
    return max(int(rate * WINDOW_WEEKS + 1e-9), 1) if rate > 0 else 0


def weeks_back(today: date, raised: Iterable[tuple[date, int]]) -> list[int]:
    """Alerts raised per week back from ``today`` (this week, the one before, ...), for ``allowance``:
    ``raised`` holds (day raised, how many), in the team's days."""
    weeks = [0] * WINDOW_WEEKS
    for day, n in raised:
        k = (today - day).days // 7
        if 0 <= k < WINDOW_WEEKS:
            weeks[k] += n
    return weeks


def allowance(rate: float, weeks: Sequence[int]) -> int:
    """New alerts a kind may raise now. ``weeks``: the alerts it raised in this week (the last 7
    days) and in each of the WINDOW_WEEKS - 1 weeks before, hard-rule alerts included (they count in
    the same budget). A week over its cap (a burst of hard-rule alerts after an odd import) costs
    the window one full week, not the next three weeks' room as well."""
    cap = week_cap(rate)
    spent = sum(min(n, cap) for n in list(weeks)[:WINDOW_WEEKS])
    this_week = weeks[0] if len(weeks) else 0
    return max(0, min(cap - this_week, window_cap(rate) - spent))


def alerts_at(scores: np.ndarray, week: np.ndarray, account: np.ndarray, threshold: float) -> int:
    """Alerts raised at ``threshold`` with the rest: an account at or above it is alerted, then not
    again for REST_WEEKS weeks (``week`` is an integer week number)."""
    sel = np.nonzero(scores >= threshold)[0]
    if not len(sel):
        return 0
    order = sel[np.lexsort((week[sel], account[sel]))]
    n, last_acc, last_week = 0, None, 0
    for i in order:
        a, w = account[i], week[i]
        if a != last_acc or w - last_week >= REST_WEEKS:
            n += 1
            last_acc, last_week = a, w
    return n


def threshold_for_budget(
    scores: np.ndarray, week: np.ndarray, account: np.ndarray, per_100_week: float
) -> float:
    """The lowest threshold whose alerts on these account-weeks stay within ``per_100_week`` alerts
    per 100 accounts per week (the count at a threshold is monotone, so a bisection finds it)."""
    allowed = per_100_week / 100 * len(scores)
    cands = np.unique(scores)[::-1]  # highest first
    lo, hi = 0, len(cands) - 1  # cands[lo] meets the budget if anything does
    if not len(cands) or alerts_at(scores, week, account, float(cands[0])) > allowed:
        return float("inf") if len(cands) == 0 else float(np.nextafter(cands[0], np.inf))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if alerts_at(scores, week, account, float(cands[mid])) <= allowed:
            lo = mid
        else:
            hi = mid - 1
    return float(cands[lo])


def week_numbers(days: np.ndarray) -> np.ndarray:
    return (days.astype("datetime64[D]").astype(np.int64) // 7).astype(np.int64)


def train(
    kind: str,
    frames: Sequence[Frame],
    events: dict[int, list[date]],
    horizon: int,
    cutoff: date,
    *,
    budget: float,
    min_events: int = MIN_EVENTS,
    class_weight: str | None = None,
    algorithm: str = "logistic_regression",
) -> Scoring:
    """Fit on the weeks before ``cutoff`` with a known outcome and set the threshold that meets
    ``budget`` (alerts per 100 accounts per week) on those same weeks; ``algorithm`` is
    logistic_regression (this module's LinearModel) or gradient_boosting (model/boosted.py)."""
    rows = rows_for(frames, events, horizon, cutoff)
    check(rows, kind, horizon, min_events)
    f0 = frames[0]
    metrics = [f.key[: -len(".7d")] for f in f0.features if f.key.endswith(".7d")]
    plans = [f.key[5:] for f in f0.features if f.key.startswith("plan.")]
    model: Scoring
    if algorithm == "gradient_boosting":
        from model import boosted

        model = boosted.fit(kind, rows, f0.features, metrics, plans)
    elif algorithm == "logistic_regression":
        model = fit(kind, rows, f0.features, metrics, plans, class_weight=class_weight)
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    p = model.proba(rows.x)
    model.threshold = threshold_for_budget(p, week_numbers(rows.day), rows.account, budget)
    model.budget = budget
    return model
