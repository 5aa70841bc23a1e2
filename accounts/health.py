"""Health scores: 0-100 per account with a band and the drivers that explain it.

All figures come from one windowed aggregate over the signals table (no per-account queries), so a
full scan of 10,000 accounts reads each recent row once. Scoring itself is a pure function of those
aggregates and the rules, table-testable without a database."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from accounts.reasons import describe
from settings import HealthRules, MetricNames
from storage.models import Account, Signal, is_nps

LOOKBACK_DAYS = 90  # how far back "last activity" is looked for; older reads as "90+ days"
MIN_BASELINE_DAYS = 7  # fewer days of history than this: no baseline yet, so no trend either way


@dataclass
class Usage:
    """One account's aggregates for an as-of date; averages are per calendar day (no row = 0)."""

    recent: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    recent_max: dict[str, float] = field(default_factory=dict)
    last_active: date | None = None
    latest: dict[str, float] = field(default_factory=dict)  # latest value in the window (e.g. nps)
    has_rows: bool = False
    last_data: date | None = None  # the account's own latest day with any signal (its feed's "data through")


@dataclass(frozen=True)
class DataThrough:
    """How far the book's usage data goes for a scan asked ``as_of`` a day.

    A day the export has not delivered yet is not a day of zero use: scoring it as one turns a healthy
    book yellow every morning before the file lands. So windows end at ``day``: the latest day with any
    signal in the whole book, never after ``as_of``. One account whose own feed stopped while the others
    continue still counts as inactive from its last data; a whole late feed does not."""

    as_of: date
    through: date | None  # None: no usage data at all up to as_of

    @property
    def day(self) -> date:
        """The day scored: windows end here."""
        return self.through or self.as_of

    @property
    def age_days(self) -> int | None:
        """Days between the data and the day asked for (0 = complete), None without data."""
        return None if self.through is None else (self.as_of - self.through).days

    def stale(self, rules: HealthRules) -> bool:
        return self.age_days is None or self.age_days > rules.data_stale_days

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "data_through": self.through.isoformat() if self.through else None,
            "data_age_days": self.age_days,
        }

    def describe(self, rules: HealthRules) -> str:
        """One line for the terminal; says clearly when the data is old and what to check."""
        if self.through is None:
            return f"No usage data up to {self.as_of.isoformat()}: send signals (ingest, API or pull) first."
        if self.age_days == 0:
            return f"Usage data through {self.through.isoformat()}."
        days = f"{self.age_days} day{'s' if self.age_days != 1 else ''}"
        if self.stale(rules):
            return (
                f"WARNING: usage data is {days} old (latest day with signals {self.through.isoformat()}, "
                f"asked for {self.as_of.isoformat()}): scored up to {self.through.isoformat()}; "
                "check that the signals export or pull still runs."
            )
        return (
            f"Usage data through {self.through.isoformat()} ({days} old): scored up to that day; "
            "days not delivered yet do not count as no use."
        )


def data_through(session: Session, as_of: date, rules: HealthRules) -> DataThrough:
    """The book's latest day with usage signals (the activity and usage metrics), up to ``as_of``. Other
    feeds do not count: a daily NPS or ticket export arriving while usage is late would otherwise read
    the missing usage days as zero use. Signals are keyed day first, so this reads from the newest day."""
    metrics = sorted({rules.activity_metric, *rules.usage_metrics})
    day = session.scalar(select(func.max(Signal.day)).where(Signal.day <= as_of, Signal.metric.in_(metrics)))
    return DataThrough(as_of, _as_date(day) if day is not None else None)


@dataclass(frozen=True)
class Driver:
    factor: str
    points: float  # deducted from 100
    code: str  # message key: what happened
    params: dict[str, Any]


@dataclass
class Health:
    account_id: int
    external_id: str | None
    name: str
    score: int | None
    band: str  # green | yellow | red | unknown
    drivers: list[Driver]
    usage: Usage
    seats: int | None
    plan: str | None
    renewal_date: date | None
    scored_on: date | None = None  # the day the windows end: the book's data-through day
    asked_on: date | None = None  # the day asked for: renewals count from it, late data or not

    def as_json(self, names: MetricNames | None = None) -> dict[str, Any]:
        last = self.usage.last_data
        return {
            "account_id": self.external_id or str(self.account_id),
            "name": self.name,
            "score": self.score,
            "band": self.band,
            "data_through": self.scored_on.isoformat() if self.scored_on else None,
            "last_data": last.isoformat() if last else None,
            "drivers": [
                {
                    "factor": d.factor,
                    "points": round(d.points, 1),
                    "code": d.code,
                    "params": d.params,
                    "text": describe(d.code, d.params, names),
                }
                for d in self.drivers
            ],
        }


def num(x: float) -> float | int:
    """A figure as people read it: 12, not 12.0; 12.3, not 12.3456."""
    return int(x) if float(x).is_integer() else round(x, 1)


def usage_by_account(
    session: Session, as_of: date, rules: HealthRules, only: Collection[int] | None = None
) -> dict[int, Usage]:
    """The main aggregate: per (account, metric) sums over the recent and baseline windows, read once.

    Accounts with no activity inside those windows get a second, narrower look further back (up to
    LOOKBACK_DAYS) for their last active day; a healthy book has few of them."""
    recent_start = as_of - timedelta(days=rules.recent_days)  # exclusive
    base_start = recent_start - timedelta(days=rules.baseline_days)  # exclusive
    in_recent = Signal.day > recent_start
    stmt = (
        select(
            Signal.account_id,
            Signal.metric,
            func.sum(case((in_recent, Signal.value), else_=0.0)),
            func.sum(case((in_recent, 0.0), else_=Signal.value)),
            func.max(case((in_recent, Signal.value))),
            func.max(case((Signal.value > 0, Signal.day))),
            func.max(Signal.day),
            func.min(Signal.day),
        )
        .where(Signal.day > base_start, Signal.day <= as_of)
        .group_by(Signal.account_id, Signal.metric)
    )
    if only is not None:  # a few accounts (App Home): the same figures, read for those alone
        stmt = stmt.where(Signal.account_id.in_(list(only)))
    out: dict[int, Usage] = {}
    nps_wanted: set[int] = set()
    for account_id, metric, rsum, bsum, rmax, last_pos, last_day, first_day in session.execute(stmt):
        u = out.get(account_id)
        if u is None:
            u = out[account_id] = Usage(has_rows=True)
        # Days before an account's first value in the windows are not zeros: a customer onboarded
        # ten days ago has a ten-day history, not a month of silence followed by "growth".
        first = _as_date(first_day)
        recent_days = min(rules.recent_days, (as_of - first).days + 1)
        base_days = (recent_start - max(base_start + timedelta(days=1), first)).days + 1
        u.recent[metric] = float(rsum or 0) / recent_days
        u.baseline[metric] = float(bsum or 0) / base_days if base_days >= MIN_BASELINE_DAYS else 0.0
        if rmax is not None:
            u.recent_max[metric] = float(rmax)
        if metric == rules.activity_metric and last_pos is not None:
            u.last_active = _as_date(last_pos)
        if last_day is not None:
            day = _as_date(last_day)
            u.last_data = day if u.last_data is None else max(u.last_data, day)
        if metric == "nps" and last_day is not None:
            nps_wanted.add(account_id)
    if nps_wanted:  # the latest survey answer per account: one query, newest first
        latest = session.execute(
            select(Signal.account_id, Signal.value)
            .where(is_nps(), Signal.day > base_start, Signal.day <= as_of)
            .order_by(Signal.day.desc())
        )
        for account_id, value in latest:
            u = out.get(account_id)
            if u is not None and "nps" not in u.latest:
                u.latest["nps"] = float(value)
    _older_activity(session, out, as_of, base_start, rules, only)
    return out


def _older_activity(
    session: Session,
    out: dict[int, Usage],
    as_of: date,
    base_start: date,
    rules: HealthRules,
    only: Collection[int] | None = None,
) -> None:
    """Last active day before the windows, for accounts idle throughout them (or absent from them)."""
    look_start = as_of - timedelta(days=LOOKBACK_DAYS)
    if look_start >= base_start:
        return
    idle = {aid for aid, u in out.items() if u.last_active is None}
    active = select(Account.id).where(Account.status == "active")
    if only is not None:
        active = active.where(Account.id.in_(list(only)))
    absent = {aid for aid in session.scalars(active) if aid not in out}
    wanted = idle | absent
    if not wanted:
        return
    ids = sorted(wanted)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = session.execute(
            select(Signal.account_id, func.max(Signal.day))
            .where(
                Signal.day > look_start,
                Signal.day <= base_start,
                Signal.metric == rules.activity_metric,
                Signal.value > 0,
                Signal.account_id.in_(chunk),
            )
            .group_by(Signal.account_id)
        )
        for account_id, day in rows:
            u = out.get(account_id)
            if u is None:
                u = out[account_id] = Usage(has_rows=True)
            u.last_active = _as_date(day)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def score(
    usage: Usage,
    *,
    seats: int | None,
    renewal_date: date | None,
    as_of: date,
    rules: HealthRules,
    today: date | None = None,
) -> tuple[int, str, list[Driver]]:
    """100 minus each factor's deduction (at most its weight), the band, and the drivers that cost points.
    Usage is read up to ``as_of`` (the data-through day); the renewal counts from ``today``, the day asked."""
    found = [
        _usage_trend(usage, rules),
        _inactivity(usage, as_of, rules),
        _seat_utilization(usage, seats, rules),
        _nps(usage, rules),
        _support(usage, rules),
    ]
    drivers = [d for d in found if d is not None]
    renewal = _renewal(drivers, renewal_date, today or as_of, rules.weights)
    if renewal is not None:
        drivers.append(renewal)

    total = max(0, min(100, round(100 - sum(d.points for d in drivers))))
    band = "green" if total >= rules.green else "yellow" if total >= rules.yellow else "red"
    drivers.sort(key=lambda d: -d.points)
    return total, band, drivers


def _usage_trend(usage: Usage, rules: HealthRules) -> Driver | None:
    """The usage metrics' drops against their baseline, averaged by their configured weights; the worst
    one explains it."""
    worst: Driver | None = None
    weighted, total_weight = 0.0, 0.0
    for metric in rules.usage_metrics:
        base, now = usage.baseline.get(metric, 0.0), usage.recent.get(metric, 0.0)
        if base <= 0:
            continue
        weight = rules.usage_weights.get(metric, 1.0)
        drop = max(0.0, 1 - now / base)
        share = min(1.0, drop / 0.5)
        weighted, total_weight = weighted + weight * share, total_weight + weight
        if share > 0 and (worst is None or drop * 100 > worst.params["pct"]):
            worst = Driver(
                "usage_trend",
                0.0,
                "usage_drop",
                {
                    "metric": metric,
                    "recent": num(round(now, 1)),
                    "baseline": num(round(base, 1)),
                    "pct": round(drop * 100),
                    "recent_days": rules.recent_days,
                },
            )
    if worst and total_weight:
        points = rules.weights.get("usage_trend", 0) * weighted / total_weight
        return Driver("usage_trend", points, worst.code, worst.params)
    return None


def _inactivity(usage: Usage, as_of: date, rules: HealthRules) -> Driver | None:
    """Days since the last active day; no activity within LOOKBACK_DAYS costs the whole weight."""
    weight = rules.weights.get("inactivity", 0)
    if usage.last_active is None:
        return Driver("inactivity", weight, "inactive_long", {"days": LOOKBACK_DAYS})
    idle = (as_of - usage.last_active).days
    points = weight * min(1.0, max(0, idle - 1) / rules.inactive_days)
    return Driver("inactivity", points, "inactive", {"days": idle}) if points > 0 else None


def _seat_utilization(usage: Usage, seats: int | None, rules: HealthRules) -> Driver | None:
    """Recent active users against seats bought: below 70% starts to cost, at 30% the whole weight."""
    active = usage.recent.get(rules.activity_metric)
    if not seats or active is None:
        return None
    util = active / seats
    points = rules.weights.get("seat_utilization", 0) * min(1.0, max(0.0, (0.7 - util) / 0.4))
    if points > 0:
        params = {"active": num(round(active, 1)), "seats": seats, "pct": round(util * 100)}
        return Driver("seat_utilization", points, "low_utilization", params)
    return None


def _nps(usage: Usage, rules: HealthRules) -> Driver | None:
    """The latest survey answer: passives (7-8) cost half the weight, detractors (0-6) all of it."""
    nps = usage.latest.get("nps")
    if nps is not None and nps <= 8:
        points = rules.weights.get("nps", 0) * (1.0 if nps <= 6 else 0.5)
        return Driver("nps", points, "nps_low", {"score": num(nps)})
    return None


def _support(usage: Usage, rules: HealthRules) -> Driver | None:
    """Tickets in the recent window against the usual count for as many days."""
    tickets_now = usage.recent.get("support_tickets", 0.0) * rules.recent_days
    usual = usage.baseline.get("support_tickets", 0.0) * rules.recent_days
    if tickets_now > max(usual, 1.0):
        points = rules.weights.get("support", 0) * min(1.0, tickets_now / max(usual, 1.0) - 1)
        params = {"recent": num(tickets_now), "usual": num(round(usual, 1)), "recent_days": rules.recent_days}
        return Driver("support", points, "support_load", params)
    return None


def _renewal(
    drivers: list[Driver], renewal_date: date | None, today: date, w: dict[str, float]
) -> Driver | None:
    """A renewal within 90 days raises the stakes of the other drivers: it costs in proportion to them,
    so a healthy account renewing soon loses nothing."""
    if renewal_date is None:
        return None
    to_renewal = (renewal_date - today).days
    if not 0 <= to_renewal <= 90:
        return None
    others = sum(d.points for d in drivers)
    other_max = sum(v for k, v in w.items() if k != "renewal") or 1
    proximity = 1 - to_renewal / 90
    points = w.get("renewal", 0) * proximity * min(1.0, 2 * others / other_max)
    if points > 0:
        return Driver(
            "renewal", points, "renewal_near", {"days": to_renewal, "date": renewal_date.isoformat()}
        )
    return None


def health_all(
    session: Session,
    as_of: date,
    rules: HealthRules,
    only: Collection[int] | None = None,
    *,
    data: DataThrough | None = None,
) -> Iterator[Health]:
    """Every active account's health with data up to ``as_of``, scored on the book's data-through day
    (see DataThrough) so that days not delivered yet are not read as zero use. The book's day is the
    whole book's even with ``only``. An account with no signal in the last 90 days is "unknown":
    either it never sent data, or it went quiet long ago and was alerted on at the time."""
    data = data or data_through(session, as_of, rules)
    today, as_of = data.as_of, data.day
    usage = usage_by_account(session, as_of, rules, only)
    stmt = (
        select(
            Account.id, Account.external_id, Account.name, Account.seats, Account.plan, Account.renewal_date
        )
        .where(Account.status == "active")
        .order_by(Account.id)
    )
    if only is not None:
        stmt = stmt.where(Account.id.in_(list(only)))
    accounts = session.execute(stmt)
    for aid, ext, name, seats, plan, renewal in accounts:
        u = usage.get(aid)
        if u is None:
            yield Health(aid, ext, name, None, "unknown", [], Usage(), seats, plan, renewal, as_of, today)
            continue
        s, band, drivers = score(u, seats=seats, renewal_date=renewal, as_of=as_of, rules=rules, today=today)
        yield Health(aid, ext, name, s, band, drivers, u, seats, plan, renewal, as_of, today)
