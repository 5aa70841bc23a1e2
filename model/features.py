"""Per-account features as of a day, for every account at once, from stored signals, snapshots and touches.

One aggregate query reads the signals into weekly buckets counted back from an anchor day (the book's
data-through day): (account, metric, week) sums, the latest active day and the first day with data. A
week's 7-day, 28-day and 13-week levels are then sums of 1, 4 and 13 buckets, so a backtest or a
training run over two years reads each signal row once, and memory grows with accounts x weeks, never
with signal rows. Features end at the anchor's week: nothing after that day is read.

Each feature has a readable name and unit in English and Japanese (``Feature``): they are a card's
reasons. Unknown values are NaN (an account with no data in a window, no NPS answer yet); the model
fills them with the training mean, so an unknown value moves no score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Date, Integer, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from handoff.checklist import missing_items
from settings import MetricNames, metric_name
from storage.models import Account, AccountSnapshot, Handoff, Signal, Touch, is_nps

SPAN_WEEKS = 13  # the longest window: 13 weekly buckets ("last 13 weeks", about 90 days)
NOT_USAGE = ("nps", "support_tickets")  # metrics with features of their own
MRR_UNIT = 10_000  # "per 10,000 of MRR": per ¥10,000 for a yen book
MAX_IDLE = 7 * SPAN_WEEKS  # days since last activity read as "91" when none in the 13 weeks
SLOPE_WEEKS = 8  # the slope is fitted on the last 8 weekly totals


@dataclass(frozen=True)
class Feature:
    key: str
    en: str
    ja: str
    unit_en: str
    unit_ja: str
    log: bool  # log1p before scaling: counts and amounts act by ratio (2 vs 4 users ~ 20 vs 40)

    def label(self, locale: str) -> str:
        return self.ja if locale.startswith("ja") else self.en

    def unit(self, locale: str) -> str:
        return self.unit_ja if locale.startswith("ja") else self.unit_en

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def feature_list(
    metrics: Sequence[str], plans: Sequence[str], activity: str, names: MetricNames | None = None
) -> list[Feature]:
    """The columns, in order, for these usage metrics and plans: one table of names and units."""

    def n(m: str, loc: str) -> str:
        return metric_name(m, loc, names)

    out: list[Feature] = []
    for m in metrics:
        en, ja = n(m, "en"), n(m, "ja")
        out += [
            Feature(
                f"{m}.7d", f"{en} per day, last 7 days", f"{ja}（1日平均、直近7日間）", "/day", "／日", True
            ),
            Feature(
                f"{m}.28d",
                f"{en} per day, last 28 days",
                f"{ja}（1日平均、直近28日間）",
                "/day",
                "／日",
                True,
            ),
            Feature(
                f"{m}.13w",
                f"{en} per day, last 13 weeks",
                f"{ja}（1日平均、直近13週間）",
                "/day",
                "／日",
                True,
            ),
        ]
        if m == activity:  # a team at its seat limit shows it on its busiest day, not in the average
            out.append(
                Feature(
                    f"{m}.peak_per_seat",
                    f"{en} on the busiest day per seat, last 14 days",
                    f"1席あたりの{ja}（直近14日間で最も多い日）",
                    "",
                    "",
                    False,
                )
            )
        if m != activity:
            out.append(
                Feature(
                    f"{m}.per_user",
                    f"{en} per active user, last 28 days",
                    f"アクティブユーザー1人あたりの{ja}（直近28日間）",
                    "",
                    "",
                    True,
                )
            )
        out += [
            Feature(
                f"{m}.per_seat",
                f"{en} per seat, last 28 days",
                f"1席あたりの{ja}（1日平均、直近28日間）",
                "/seat/day",
                "／席・日",
                True,
            ),
            Feature(
                f"{m}.per_mrr",
                f"{en} per {MRR_UNIT:,} of MRR, last 28 days",
                f"MRR{MRR_UNIT // 10_000}万あたりの{ja}（1日平均、直近28日間）",
                "/day",
                "／日",
                True,
            ),
            Feature(
                f"{m}.trend",
                f"{en}, last 28 days vs the 28 before",
                f"{ja}の増減（直近28日間とその前の28日間の比較）",
                "%",
                "%",
                False,
            ),
            Feature(
                f"{m}.slope",
                f"{en}, weekly trend over the last {SLOPE_WEEKS} weeks",
                f"{ja}の週ごとの傾向（直近{SLOPE_WEEKS}週間）",
                "%/week",
                "%／週",
                False,
            ),
        ]
    out += [
        Feature("days_since_active", "days since last activity", "最終利用からの日数", "days", "日", True),
        Feature(
            "support_per_week",
            "support tickets per week, last 28 days",
            "問い合わせ件数（週平均、直近28日間）",
            "/week",
            "件／週",
            True,
        ),
        Feature("nps", "latest NPS answer", "直近のNPS回答", "", "", False),
        Feature(
            "nps_change",
            "latest NPS answer against the one before",
            "直近のNPS回答と前回との差",
            "points",
            "ポイント",
            False,
        ),
        Feature(
            "touches_90d", "CS touches logged, last 90 days", "CSタッチの記録数（直近90日間）", "", "件", True
        ),
        Feature(
            "handoff_gaps",
            "open handoff checklist items",
            "引き継ぎチェックリストの未記入項目",
            "",
            "項目",
            False,
        ),
        Feature("tenure_days", "days as a customer", "契約開始からの日数", "days", "日", True),
        Feature("seats", "contracted seats", "契約席数", "", "席", True),
        Feature("mrr", "MRR", "MRR", "", "", True),
        Feature("days_to_renewal", "days to renewal", "更新までの日数", "days", "日", False),
    ]
    out += [Feature(f"plan.{p}", f"on the {p} plan", f"{p}プラン", "", "", False) for p in plans]
    return out


@dataclass
class Frame:
    """The features of the accounts that were customers on ``day``: one row per account."""

    day: date
    account_ids: np.ndarray  # Account.id per row
    plans: list[str | None]
    features: list[Feature]
    x: np.ndarray  # (rows, features), NaN = unknown

    def column(self, key: str) -> np.ndarray:
        return self.x[:, [f.key for f in self.features].index(key)]


def _days_before(session: Session, anchor: date) -> ColumnElement[Any]:
    """Days from a signal's day to ``anchor`` (>= 0), in the database's own date arithmetic."""
    if session.get_bind().dialect.name == "postgresql":
        return literal(anchor, Date) - Signal.day
    return func.julianday(anchor.isoformat()) - func.julianday(Signal.day)


def _week_of(session: Session, days: ColumnElement[Any]) -> ColumnElement[Any]:
    """Whole weeks in ``days`` (>= 0), truncated, identically on both databases: PostgreSQL's
    ``CAST(days / 7 AS INTEGER)`` divides as NUMERIC and rounds, which put days 4-6 of every week
    into the week before and gave PostgreSQL other features (and another model) than SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return days // 7  # integer division of integer days: truncates
    return cast(days / 7, Integer)  # SQLite's CAST of a real truncates


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _data_days(had: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """Days of a ``window`` (ending ``offset`` days before the day) the account had data for."""
    return np.clip(had - offset, 0, window)


class History:
    """Weekly rollups of the stored history, for the weeks ending ``anchor - 7k``, k = 0..weeks - 1.

    Read once (a handful of queries for all accounts); ``frame(k)`` then builds any week's features
    with array arithmetic and one snapshot query, so call it while the session is open. ``weeks=1`` is
    the daily scan's case: the anchor's week alone."""

    def __init__(
        self,
        session: Session,
        anchor: date,
        weeks: int,
        *,
        activity: str = "active_users",
        names: MetricNames | None = None,
    ) -> None:
        self.session, self.anchor, self.weeks = session, anchor, weeks
        self.activity, self.names = activity, names
        self.buckets = weeks + SPAN_WEEKS
        rows = session.execute(
            select(
                Account.id,
                Account.external_id,
                Account.name,
                Account.contract_start,
                Account.churned_on,
                Account.status,
                Account.plan,
                Account.mrr,
                Account.seats,
                Account.renewal_date,
            ).order_by(Account.id)
        ).all()
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.index = {int(a): i for i, a in enumerate(self.ids)}
        self.accounts = {int(r[0]): r for r in rows}
        n = len(rows)
        self.start = np.array(
            [(anchor - r[3]).days if r[3] is not None else np.nan for r in rows], dtype=float
        )  # days before the anchor the contract started
        self.churned = np.array(
            [(anchor - r[4]).days if r[4] is not None else -(10**6) for r in rows], dtype=float
        )
        self._rollup(n)
        self._nps(n)
        self._touches()
        self._gaps(n)
        self._snaps = _Snapshots(session, self, anchor - timedelta(days=7 * max(weeks - 1, 0)))

    # --- reading --------------------------------------------------------------------------------------

    def _rollup(self, n: int) -> None:
        x = _days_before(self.session, self.anchor)
        bucket = _week_of(self.session, x)
        lo = self.anchor - timedelta(days=7 * self.buckets)
        stmt = (
            select(
                Signal.account_id,
                Signal.metric,
                bucket,
                func.sum(Signal.value),
                func.min(case((Signal.value > 0, x))),
                func.max(x),
                func.max(Signal.value),
            )
            .where(Signal.day > lo, Signal.day <= self.anchor)
            .group_by(Signal.account_id, Signal.metric, bucket)
        )
        self.sums: dict[str, np.ndarray] = {}
        self.last_pos: dict[str, np.ndarray] = {}
        self.peak: dict[str, np.ndarray] = {}  # the busiest day's value per week
        self.first = np.full(n, -1.0)  # days before the anchor of the account's first data in range
        for (
            aid,
            metric,
            b,
            total,
            pos,
            far,
            top,
        ) in self.session.connection().execute(  # Core rows: the ORM adds seconds
            stmt.execution_options(yield_per=20_000)
        ):
            i, b = self.index.get(aid), int(b)
            if i is None or not 0 <= b < self.buckets or metric == "nps":
                continue
            if metric not in self.sums:
                self.sums[metric] = np.zeros((n, self.buckets))
                self.last_pos[metric] = np.full((n, self.buckets), np.inf)
                self.peak[metric] = np.zeros((n, self.buckets))
            self.sums[metric][i, b] = float(total or 0)
            self.peak[metric][i, b] = float(top or 0)
            if pos is not None:
                self.last_pos[metric][i, b] = float(pos)
            self.first[i] = max(self.first[i], float(far))

    def _nps(self, n: int) -> None:
        x = _days_before(self.session, self.anchor)
        rows = self.session.execute(
            select(Signal.account_id, x, Signal.value)
            .where(is_nps(), Signal.day <= self.anchor)
            .order_by(Signal.day)
        ).all()
        keep = [(self.index[a], float(d), float(v)) for a, d, v in rows if a in self.index]
        self.nps_rows = np.array(keep, dtype=float).reshape(-1, 3)

    def _touches(self) -> None:
        end = datetime.combine(self.anchor + timedelta(days=1), time(), UTC)
        lo = end - timedelta(days=7 * self.buckets + 90)
        rows = self.session.execute(
            select(Touch.account_id, Touch.occurred_at).where(
                Touch.occurred_at < end, Touch.occurred_at >= lo
            )
        ).all()
        keep = [(self.index[a], (self.anchor - at.date()).days) for a, at in rows if a in self.index]
        self.touch_rows = np.array(keep, dtype=float).reshape(-1, 2)

    def _gaps(self, n: int) -> None:
        """Open checklist items of each account's latest handoff (today's answers: edits are rare), and
        the day it was handed off: a past week sees it only from then, so a backtest cannot learn from a
        handoff that had not happened yet."""
        self.gaps = np.zeros(n)
        self.gaps_from = np.full(n, np.inf)  # days before the anchor the handoff was made
        latest = select(func.max(Handoff.id)).group_by(Handoff.account_id)
        for h in self.session.scalars(
            select(Handoff).where(Handoff.id.in_(latest)).options(selectinload(Handoff.stakeholders))
        ):
            if h.account_id in self.index:
                i = self.index[h.account_id]
                self.gaps[i] = len(missing_items(h))
                made = h.created_at.replace(tzinfo=h.created_at.tzinfo or UTC).astimezone(UTC).date()
                self.gaps_from[i] = (self.anchor - made).days

    # --- one week ---------------------------------------------------------------------------------------

    @property
    def metrics(self) -> list[str]:
        """Usage metrics seen, the activity metric first."""
        seen = sorted(m for m in self.sums if m not in NOT_USAGE)
        return sorted(seen, key=lambda m: m != self.activity)

    def plans_seen(self) -> list[str]:
        return sorted({r[6] for r in self.accounts.values() if r[6]})

    def frame(
        self, k: int = 0, *, metrics: Sequence[str] | None = None, plans: Sequence[str] | None = None
    ) -> Frame:
        """Features on the day ``anchor - 7k`` of the accounts that were customers that day."""
        day = self.anchor - timedelta(days=7 * k)
        metrics = list(self.metrics if metrics is None else metrics)
        plans = list(self.plans_seen() if plans is None else plans)
        features = feature_list(metrics, plans, self.activity, self.names)
        idx, plan_of, mrr_a, seats_a, renewal = self._customers(day, k)
        had = self.first[idx] - 7 * k + 1  # days of data up to the day, however far back
        with np.errstate(divide="ignore", invalid="ignore"):
            cols = self._usage_columns(metrics, idx, k, had, seats_a, mrr_a)
            cols += self._account_columns(plans, idx, k, had, plan_of, seats_a, mrr_a, renewal)
        x = np.column_stack(cols) if cols and len(idx) else np.zeros((len(idx), len(features)))
        x[~np.isfinite(x)] = np.nan
        return Frame(day, self.ids[idx], plan_of, features, x)

    def _customers(
        self, day: date, k: int
    ) -> tuple[np.ndarray, list[str | None], np.ndarray, np.ndarray, list[float]]:
        """The rows of the accounts active on ``day`` (week ``k``), with the plan, MRR, seats and days
        to renewal the latest accounts file up to that day gave them (NaN when unknown). Before an
        account's first accounts file: that file, the nearest to the day (today's row would carry a
        later upgrade into the weeks before it); never in a file (born in a handoff): today's."""
        snaps = self._snaps
        plan, mrr, seats, active, renewal = snaps.as_of(day)
        keep = (self.churned < 7 * k) & ~(self.start < 7 * k) & active  # a customer that day
        idx = np.nonzero(keep)[0].astype(np.int64)
        names = snaps.plans
        plan_of = [names[c] if c >= 0 else None for c in plan[idx].tolist()]
        seats_a = seats[idx]
        seats_a[seats_a == 0] = np.nan
        to_renewal = (renewal[idx] - day.toordinal()).tolist()
        return idx, plan_of, mrr[idx], seats_a, to_renewal

    def _window_sum(self, m: str, idx: np.ndarray, b0: int, lo: int, hi: int) -> np.ndarray:
        """Metric ``m`` summed over weekly buckets lo..hi - 1 back from bucket ``b0``; zeros if unseen."""
        arr = self.sums.get(m)
        return np.zeros(len(idx)) if arr is None else arr[idx, b0 + lo : b0 + hi].sum(axis=1)

    def _usage_columns(
        self,
        metrics: Sequence[str],
        idx: np.ndarray,
        k: int,
        had: np.ndarray,
        seats_a: np.ndarray,
        mrr_a: np.ndarray,
    ) -> list[np.ndarray]:
        """Each usage metric's columns, in ``feature_list``'s order: per-day levels over the windows
        the account had data for, so a new account's short history is not read as a drop."""
        b0 = k
        d7, d28, d91, dprev = (
            _data_days(had, 7),
            _data_days(had, 28),
            _data_days(had, 91),
            _data_days(had, 28, 28),
        )
        act28 = self._window_sum(self.activity, idx, b0, 0, 4)
        cols: list[np.ndarray] = []
        for m in metrics:
            s7, s28, s91, sprev = (
                self._window_sum(m, idx, b0, 0, 1),
                self._window_sum(m, idx, b0, 0, 4),
                self._window_sum(m, idx, b0, 0, 13),
                self._window_sum(m, idx, b0, 4, 8),
            )
            a28 = np.where(d28 > 0, s28 / d28, np.nan)
            cols += [np.where(d7 > 0, s7 / d7, np.nan), a28, np.where(d91 > 0, s91 / d91, np.nan)]
            if m == self.activity:
                top = self.peak[m][idx, b0 : b0 + 2].max(axis=1) if m in self.peak else np.zeros(len(idx))
                cols.append(np.where(d7 > 0, top / seats_a, np.nan))
            if m != self.activity:
                cols.append(np.where(d28 > 0, np.where(s28 > 0, s28 / act28, 0.0), np.nan))
            cols.append(a28 / seats_a)
            cols.append(np.where(mrr_a > 0, a28 / (mrr_a / MRR_UNIT), np.nan))
            prev = np.where(dprev >= 7, sprev / dprev, np.nan)
            change = np.where(prev > 0, (a28 - prev) / prev * 100, np.where(a28 > 0, 300.0, 0.0))
            cols.append(np.where(np.isnan(prev) | np.isnan(a28), np.nan, np.clip(change, -100, 300)))
            cols.append(self._slope(m, idx, b0, had))
        return cols

    def _account_columns(
        self,
        plans: Sequence[str],
        idx: np.ndarray,
        k: int,
        had: np.ndarray,
        plan_of: list[str | None],
        seats_a: np.ndarray,
        mrr_a: np.ndarray,
        renewal: list[float],
    ) -> list[np.ndarray]:
        """The columns after the usage metrics', in ``feature_list``'s order: activity, support, NPS,
        touches, handoff, the contract, and one 0/1 column per plan."""
        b0 = k
        d7, d28 = _data_days(had, 7), _data_days(had, 28)
        cols: list[np.ndarray] = []
        pos = self.last_pos.get(self.activity)
        if pos is None:
            idle = np.full(len(idx), np.nan)
        else:
            idle = np.minimum(pos[idx, b0 : b0 + SPAN_WEEKS].min(axis=1) - 7 * k, MAX_IDLE)
            idle = np.where(d7 > 0, idle, np.nan)
        cols.append(idle)
        tickets = self._window_sum("support_tickets", idx, b0, 0, 4)
        cols.append(
            np.where(d28 > 0, tickets / d28 * 7, np.nan)
            if "support_tickets" in self.sums
            else np.full(len(idx), np.nan)
        )
        latest, before = self._latest_nps(idx, k)
        cols += [latest, latest - before]
        cols.append(self._touch_count(idx, k))
        cols.append(np.where(self.gaps_from[idx] >= 7 * k, self.gaps[idx], 0.0))
        cols.append(np.maximum(self.start[idx] - 7 * k, 0))
        cols.append(seats_a)
        cols.append(mrr_a)
        cols.append(np.clip(np.array(renewal, dtype=float), 0, 400))
        for p in plans:
            cols.append(np.array([1.0 if q == p else 0.0 for q in plan_of]))
        return cols

    def _slope(self, m: str, idx: np.ndarray, b0: int, had: np.ndarray) -> np.ndarray:
        """Least-squares slope of the last SLOPE_WEEKS weekly totals, in % of their mean per week: a
        steady slide reads negative even when no 28 days differ much from the 28 before. NaN with
        fewer weeks of data or no use at all."""
        arr = self.sums.get(m)
        if arr is None:
            return np.full(len(idx), np.nan)
        y = arr[idx, b0 : b0 + SLOPE_WEEKS][:, ::-1]  # oldest week first
        if y.shape[1] < SLOPE_WEEKS:
            return np.full(len(idx), np.nan)
        t = np.arange(SLOPE_WEEKS) - (SLOPE_WEEKS - 1) / 2
        mean = y.mean(axis=1)
        slope = (y - mean[:, None]) @ t / (t @ t)
        out = np.clip(np.where(mean > 0, slope / mean * 100, np.nan), -100, 100)
        return np.where(had >= 7 * SLOPE_WEEKS, out, np.nan)

    def _latest_nps(self, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each account's latest NPS answer up to the day, and the one before it (NaN when none)."""
        latest, before = np.full(len(self.ids), np.nan), np.full(len(self.ids), np.nan)
        r = self.nps_rows
        keep = r[r[:, 1] >= 7 * k] if len(r) else r
        if len(keep):  # rows are oldest first: the first of the reversed rows per account is its latest
            rev = keep[::-1]
            accounts, first = np.unique(rev[:, 0].astype(int), return_index=True)
            latest[accounts] = rev[first, 2]
            rest = np.delete(rev, first, axis=0)
            if len(rest):
                accounts, first = np.unique(rest[:, 0].astype(int), return_index=True)
                before[accounts] = rest[first, 2]
        return latest[idx], before[idx]

    def _touch_count(self, idx: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros(len(self.ids))
        r = self.touch_rows
        if len(r):
            keep = r[(r[:, 1] >= 7 * k) & (r[:, 1] < 7 * k + 90)]
            np.add.at(out, keep[:, 0].astype(int), 1.0)
        return out[idx]


class _Snapshots:
    """The accounts files' rows a history's frames pick from, read once as columns: each account's
    latest file up to ``lo`` (the oldest frame's day), every file from then to the anchor, and each
    account's first (for days before it). A frame's pick is then a sorted-array lookup per account:
    a grouped query per week made the snapshots most of a two-year history's feature time."""

    STRIDE = 10**7  # above any date's ordinal: one sortable key per (account, day)

    def __init__(self, session: Session, history: History, lo: date) -> None:
        self.lo = lo
        s = AccountSnapshot
        cols = (s.account_id, s.as_of, s.plan, s.mrr, s.seats, s.status, s.renewal_date)
        conn = session.connection()  # Core rows: a million of them through the ORM cost seconds more

        def picked(pick: Any, *where: Any) -> list[Any]:
            chosen = select(s.account_id, pick.label("as_of")).where(*where).group_by(s.account_id).subquery()
            on = and_(s.account_id == chosen.c.account_id, s.as_of == chosen.c.as_of)
            return list(conn.execute(select(*cols).join(chosen, on)))

        self.plans: list[str] = []
        self._code: dict[str, int] = {}
        self._ordinals: dict[Any, float] = {}  # a book has few distinct dates: convert each once
        rows = picked(func.max(s.as_of), s.as_of <= lo)
        rows += conn.execute(select(*cols).where(s.as_of > lo, s.as_of <= history.anchor))
        acc = np.array([history.index.get(r[0], -1) for r in rows], dtype=np.int64)
        day = self._ordinal([r[1] for r in rows]).astype(np.int64)
        order = np.lexsort((day, acc))
        order = order[acc[order] >= 0]
        self.acc, self.key = acc[order], acc[order] * self.STRIDE + day[order]
        self.fields = tuple(col[order] for col in self._columns(rows, 2))
        # the fallbacks: each account's first file, else the account's row itself
        firsts = picked(func.min(s.as_of))
        self.first = np.full(len(history.ids), -1, dtype=np.int64)
        for j, r in enumerate(firsts):
            i = history.index.get(r[0])
            if i is not None:
                self.first[i] = j
        self.first_fields = self._columns(firsts, 2)
        self.now_fields = self._columns(
            [(r[6], r[7], r[8], r[5], r[9]) for r in history.accounts.values()], 0
        )

    def _columns(self, rows: Sequence[Sequence[Any]], at: int) -> tuple[np.ndarray, ...]:
        """Each row's (plan, mrr, seats, status, renewal), from position ``at``, as arrays: plan code
        (-1: none), MRR and seats (NaN: none), active or not, the renewal's ordinal (NaN: none)."""
        plan = np.array([self._plan_code(r[at]) for r in rows], dtype=np.int64)
        mrr = np.array([np.nan if r[at + 1] is None else float(r[at + 1]) for r in rows], dtype=float)
        seats = np.array([np.nan if r[at + 2] is None else float(r[at + 2]) for r in rows], dtype=float)
        active = np.array([r[at + 3] == "active" for r in rows], dtype=bool)
        return plan, mrr, seats, active, self._ordinal([r[at + 4] for r in rows])

    def _ordinal(self, days: Sequence[Any]) -> np.ndarray:
        """Dates (or ISO strings, or None) as float ordinals, NaN for None."""
        seen = self._ordinals
        for d in set(days) - seen.keys():
            seen[d] = np.nan if d is None else float(_as_date(d).toordinal())
        return np.array([seen[d] for d in days], dtype=float)

    def _plan_code(self, name: str | None) -> int:
        if name is None:
            return -1
        if name not in self._code:
            self._code[name] = len(self.plans)
            self.plans.append(name)
        return self._code[name]

    def as_of(self, day: date) -> tuple[np.ndarray, ...]:
        """Per account (the history's order): its latest file up to ``day``, else its first file, else
        its own row: (plan, mrr, seats, active, renewal) as ``_columns`` gives them."""
        n = len(self.first)
        ids = np.arange(n, dtype=np.int64)
        pos = np.searchsorted(self.key, ids * self.STRIDE + day.toordinal(), side="right") - 1
        has = pos >= 0
        has[has] = self.acc[pos[has]] == ids[has]
        has_first = ~has & (self.first >= 0)
        out = []
        for now, latest, first in zip(self.now_fields, self.fields, self.first_fields, strict=True):
            col = now.copy()
            col[has_first] = first[self.first[has_first]]
            col[has] = latest[pos[has]]
            out.append(col)
        return tuple(out)
