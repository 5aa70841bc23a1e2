"""The alert-quality figures of /work/shared/docs/alert-quality.md, as plain functions: one place for the
definitions the benchmark (benchmarks/alert_quality.py) and `app.py model backtest` both print.
Kept apart from the replay so the definitions can be checked on hand-made cases
(tests/model/test_metrics.py): which day counts as "7 days ahead", how ties rank, what the
base rate is measured over. Days are ``date``s; an alert's day is the Monday the team saw it."""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive outranks a random negative (higher score = more at risk);
    ties count half. None when either class is empty."""
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    n_pos = sum(1 for _, y in pairs if y)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):  # average rank over each run of tied scores
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def top_share_lift(scores: Sequence[float], labels: Sequence[bool], share: float = 0.1) -> float | None:
    """Positive rate among the ``share`` highest-scored rows over the overall rate. Rows tied at the
    cut count in proportion (the expected rate under a random tie-break), so a coarse score that puts
    30 % of rows on one value is not credited with whichever of them sorting happened to put first."""
    n = len(scores)
    total = sum(1 for y in labels if y)
    if n == 0 or total == 0:
        return None
    k = share * n
    ordered = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    taken, hits, i = 0.0, 0.0, 0
    while i < n and taken < k:
        j = i
        while j < n and ordered[j][0] == ordered[i][0]:
            j += 1
        size, pos = j - i, sum(1 for t in range(i, j) if ordered[t][1])
        use = min(size, k - taken)
        hits += pos * use / size
        taken += use
        i = j
    return (hits / taken) / (total / n)


def _any_within(days: Sequence[date], start: date, lo: int, hi: int) -> bool:
    """Whether a sorted ``days`` has one with lo <= (day - start).days <= hi."""
    i = bisect_left(days, start + timedelta(days=lo))
    return i < len(days) and (days[i] - start).days <= hi


def followed_share(
    points: Iterable[tuple[str, date]], events: Mapping[str, Sequence[date]], lo: int = 1, hi: int = 90
) -> tuple[int, int]:
    """(how many, of how many) (account, day) points have an event on that account between ``lo`` and
    ``hi`` days after (inclusive): precision of alerts, or the base rate over scored account-weeks."""
    hit = n = 0
    for account, day in points:
        n += 1
        hit += _any_within(events.get(account, ()), day, lo, hi)
    return hit, n


@dataclass(frozen=True)
class Caught:
    caught: int
    total: int
    leads: list[int]  # per caught event: days from its earliest qualifying alert to the event

    @property
    def recall(self) -> float | None:
        return self.caught / self.total if self.total else None

    @property
    def median_lead(self) -> float | None:
        return statistics.median(self.leads) if self.leads else None


def caught_ahead(
    events: Iterable[tuple[str, date]], alerts: Mapping[str, Sequence[date]], lo: int = 7, hi: int = 90
) -> Caught:
    """Of the (account, event day) ``events``, those with an alert on the account between ``hi`` and
    ``lo`` days before (inclusive): churn recall at 7-90 days (an alert the day before is too late),
    upsell recall with lo=1. The lead of a caught event is that of its earliest such alert."""
    caught, total, leads = 0, 0, []
    for account, day in events:
        total += 1
        best = None
        for a in alerts.get(account, ()):
            gap = (day - a).days
            if lo <= gap <= hi and (best is None or gap > best):
                best = gap
        if best is not None:
            caught += 1
            leads.append(best)
    return Caught(caught, total, leads)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _by_account(points: Iterable[tuple[Hashable, date]]) -> dict[Hashable, list[date]]:
    """Alert days per account, in order: the lookup ``caught_ahead`` takes."""
    out: dict[Hashable, list[date]] = {}
    for a, d in points:
        out.setdefault(a, []).append(d)
    return out


def _in_windows(
    churns: Mapping[Hashable, Sequence[date]],
    upgrades: Mapping[Hashable, Sequence[date]],
    windows: Sequence[tuple[date, date]],
) -> tuple[list[tuple[Hashable, date]], list[tuple[Hashable, date]]]:
    """The churns and upgrades recall counts: those whose whole 90-day window lies inside a scored
    (first, last) range, so an event no alert could have preceded is not counted as missed."""
    churn_pop: list[tuple[Hashable, date]] = []
    up_pop: list[tuple[Hashable, date]] = []
    for first, last in set(windows):
        lo, hi = first + timedelta(days=90), last + timedelta(days=7)
        churn_pop += [(a, d) for a, v in churns.items() for d in v if lo <= d <= hi]
        up_pop += [(a, d) for a, v in upgrades.items() for d in v if lo <= d <= hi]
    return churn_pop, up_pop


def alert_figures(
    scores: Sequence[tuple[Hashable, date, float]],
    alerts: Sequence[tuple[Hashable, date, str]],
    churns: Mapping[Hashable, Sequence[date]],
    upgrades: Mapping[Hashable, Sequence[date]],
    windows: Sequence[tuple[date, date]],
    weeks: Sequence[tuple[Hashable, date]] | None = None,
) -> dict[str, Any]:
    """Every figure of issue 10's table for one method: the one definition `app.py model backtest`
    and benchmarks/alert_quality.py both print (keyed as ``ROWS``).

    ``scores`` are (account, day, score), higher = more at risk, for the AUC and top-decile lift;
    ``alerts`` (account, day, churn | upsell); ``weeks`` the scored account-weeks the base rates and
    the alert rate are counted over (default: those of ``scores``); ``windows`` each (first, last)
    scored day range, whose churns (upgrades) with their whole 90-day window inside count for recall.
    Accounts are any hashable key (a benchmark pooling books keys them by book too)."""
    weeks = [(a, d) for a, d, _ in scores] if weeks is None else list(weeks)
    labels = [_any_within(sorted(churns.get(a, ())), d, 1, 30) for a, d, _ in scores]
    vals = [s for _, _, s in scores]
    churn_alerts = [(a, d) for a, d, k in alerts if k == "churn"]
    up_alerts = [(a, d) for a, d, k in alerts if k == "upsell"]
    by_acc, up_by_acc = _by_account(churn_alerts), _by_account(up_alerts)
    churn_pop, up_pop = _in_windows(churns, upgrades, windows)
    base_hit, base_n = followed_share(weeks, churns, 1, 90)
    prec_hit, prec_n = followed_share(churn_alerts, churns, 1, 90)
    up_base_hit, _ = followed_share(weeks, upgrades, 1, 90)
    up_hit, up_n = followed_share(up_alerts, upgrades, 1, 90)
    recall = caught_ahead(churn_pop, by_acc, 7, 90)
    up_recall = caught_ahead(up_pop, up_by_acc, 1, 90)
    n = len(weeks)
    base = base_hit / base_n if base_n else None
    precision = prec_hit / prec_n if prec_n else None
    up_base = up_base_hit / base_n if base_n else None
    up_precision = up_hit / up_n if up_n else None
    return {
        "account_weeks": n,
        "auc_30d": auc(vals, labels),
        "top_decile_lift_30d": top_share_lift(vals, labels, 0.1),
        "churn_recall_7_90d": recall.recall,
        "churns_in_window": recall.total,
        "churn_precision_90d": precision,
        "churn_base_rate_90d": base,
        "churn_lift_90d": ratio(precision, base),
        "alerts_per_100_week": (len(churn_alerts) + len(up_alerts)) / n * 100 if n else None,
        "churn_alerts_per_100_week": len(churn_alerts) / n * 100 if n else None,
        "upsell_alerts_per_100_week": len(up_alerts) / n * 100 if n else None,
        "median_lead_days": recall.median_lead,
        "upsell_recall_90d": up_recall.recall,
        "upgrades_in_window": up_recall.total,
        "upsell_precision_90d": up_precision,
        "upsell_base_rate_90d": up_base,
        "upsell_lift_90d": ratio(up_precision, up_base),
    }


def ranking(
    scores: Sequence[tuple[Hashable, date, float]],
    events: Mapping[Hashable, Sequence[date]],
    horizon: int,
    prefix: str,
) -> dict[str, float | None]:
    """How ``scores`` (account, day, score; higher = likelier) rank the account-weeks followed by an
    event within 1..``horizon`` days: AUC and top-decile lift, threshold-free as the churn ones are,
    keyed ``{prefix}_auc_{horizon}d`` and ``{prefix}_top_decile_lift_{horizon}d`` (None without rows
    or without an event among them). The upsell model's figures for model/backtest.choose."""
    labels = [_any_within(sorted(events.get(a, ())), d, 1, horizon) for a, d, _ in scores]
    vals = [s for _, _, s in scores]
    return {
        f"{prefix}_auc_{horizon}d": auc(vals, labels),
        f"{prefix}_top_decile_lift_{horizon}d": top_share_lift(vals, labels, 0.1),
    }


# issue 10's table: (label, key of ``alert_figures``, format), printed by the CLI and the benchmark
ROWS = [
    ("AUC, churn within 30 days", "auc_30d", "{:.3f}"),
    ("top-decile lift, churn within 30 days", "top_decile_lift_30d", "{:.2f}"),
    ("churns caught 7-90 days ahead", "churn_recall_7_90d", "{:.1%}"),
    ("churn alert precision, 90 days", "churn_precision_90d", "{:.1%}"),
    ("  base rate (account-weeks churning in 90 d)", "churn_base_rate_90d", "{:.1%}"),
    ("  lift over the base rate", "churn_lift_90d", "{:.2f}"),
    ("alerts per 100 accounts per week", "alerts_per_100_week", "{:.2f}"),
    ("  churn risk", "churn_alerts_per_100_week", "{:.2f}"),
    ("  upsell", "upsell_alerts_per_100_week", "{:.2f}"),
    ("median lead time, days (caught churns)", "median_lead_days", "{:.0f}"),
    ("upgrades preceded by an upsell alert, 90 d", "upsell_recall_90d", "{:.1%}"),
    ("upsell alert precision, 90 days", "upsell_precision_90d", "{:.1%}"),
    ("  base rate (account-weeks upgrading in 90 d)", "upsell_base_rate_90d", "{:.1%}"),
    ("  lift over the base rate", "upsell_lift_90d", "{:.2f}"),
]


# the upsell model's ranking (``ranking``), which `app.py model backtest` prints below ROWS
UPSELL_ROWS = [
    ("AUC, upgrade within 90 days", "upsell_auc_90d", "{:.3f}"),
    ("top-decile lift, upgrade within 90 days", "upsell_top_decile_lift_90d", "{:.2f}"),
]


def fmt(template: str, v: float | None) -> str:
    """A figure for a table: '-' when there is none."""
    return "-" if v is None else template.format(v)
