"""The alert-quality figures of /work/shared/docs/alert-quality.md, as plain functions: one place for the
definitions the benchmark (benchmarks/alert_quality.py) and `app.py model backtest` both print.
Kept apart from the replay so the definitions can be checked on hand-made cases
(tests/model/test_metrics.py): which day counts as "7 days ahead", how ties rank, what the
base rate is measured over. Days are ``date``s; an alert's day is the Monday the team saw it."""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta


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
