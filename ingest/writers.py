"""Getting usage signals, company metrics and touches in (accounts: ingest/accounts.py): one code path
for files, the HTTP API and the scheduled pull, and ``ingest``, the one table of kinds.

A batch is all or nothing: any bad line (malformed, or naming an unknown account) makes the whole batch
fail with every bad line and its reason, and nothing is written. Files from the CLI and the API go in
through ``ingest``: on SQLite signals and accounts (the big ones) are checked into a private stage and
applied in short transactions (storage/imports.py), so a 200 MB file never holds the write lock that
Slack's writes wait on; the other kinds are one unit of work each. Memory stays flat: rows are read one
at a time and written in fixed-size batches; only the account-id map is held."""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from accounts.names import normalize_name
from clock import Clock, local_date
from digest.funnel import METRICS as COMPANY_METRICS
from handoff.cadence import ALIASES, log_touch
from handoff.service import Actor
from ingest.accounts import import_accounts
from ingest.readers import (
    METRIC_FIELDS,
    SIGNAL_FIELDS,
    TOUCH_FIELDS,
    Collector,
    Records,
    Result,
    Row,
    date_of,
    number_of,
    report_repeats,
    text_of,
)
from ingest.values import (
    RANGES,
    VALUE_MAX,
    check_window,
    date_window,
    value_problem,
)
from storage import imports
from storage.db import Database, serialize
from storage.limits import describe, text_problem
from storage.models import Account, CompanyMetric, Touch

T = TypeVar("T")
BATCH = 5000
SIGNAL_PAST_YEARS = 20  # older usage data is a typo (year 1) rather than history
_ORDINAL_BASE = date(1900, 1, 1).toordinal()  # packed duplicate keys: 20 bits of day, 11 of metric, 32 of id
_METRIC_BITS = 11
_METRIC = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _upsert_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        f"INSERT INTO signals (day, account_id, metric, value) VALUES ({mark}, {mark}, {mark}, {mark}) "
        "ON CONFLICT (day, account_id, metric) DO UPDATE SET value = excluded.value"
    )


def ingest_signals(
    session: Session,
    rows: Records | Iterable[Row],
    *,
    progress: Callable[[int], None] | None = None,
    today: date | None = None,
) -> Result:
    """Upsert daily values by (account, date, metric) in the caller's transaction: re-sending a day
    corrects it, but one file naming a (account, date, metric) twice is refused (which value did it
    mean?). Files from people and sources go through ``import_signals``, which never holds the write
    lock for long; this is for small batches inside a larger unit of work (the demo, tests)."""
    conn = session.connection()
    sql = _upsert_sql(conn.dialect.name)
    return _read_signals(conn, rows, lambda batch: conn.exec_driver_sql(sql, batch), progress, today)


def import_signals(
    db: Database,
    rows: Records | Iterable[Row],
    *,
    clock: Clock,
    progress: Callable[[int], None] | None = None,
    today: date | None = None,
    staged: bool | None = None,
) -> Result:
    """``ingest_signals`` as its own units of work, for the CLI and the API. On SQLite (one writer for
    the whole file) the file is read and checked into a private staging table, then applied in short
    transactions (storage/imports.py), so a big file never locks Slack's writes out and a refused one
    writes nothing; on PostgreSQL one transaction does that already (``staged`` forces either way).
    Raises ImportBusy while another signals import applies. ``details["recovered"]`` lists imports
    a crashed process had left half-applied, rolled back first."""
    recovered = imports.recover(db, clock)
    if not (staged if staged is not None else db.engine.dialect.name == "sqlite"):
        # Row locks only: one transaction blocks no Slack write there, and is 2.5x faster than chunks
        # with undo rows (benchmarks/import_contention.py); a killed process's transaction rolls back.
        with db.session() as session:
            result = ingest_signals(session, rows, progress=progress, today=today)
        result.details["recovered"] = recovered
        return result
    with db.engine.connect() as conn:
        sql = imports.create_stage(conn)
        try:
            result = _read_signals(
                conn, rows, lambda batch: conn.exec_driver_sql(sql, batch), progress, today
            )
            imports.apply_stage(conn, db, clock, result.rows)
        finally:
            imports.drop_stage(conn)
    result.details["recovered"] = recovered
    return result


def _read_signals(
    conn: Connection,
    rows: Records | Iterable[Row],
    write: Callable[[list[tuple[Any, ...]]], Any],
    progress: Callable[[int], None] | None,
    today: date | None,
) -> Result:
    """Check every row and hand the good ones to ``write`` in batches; refuse the lot on any bad line.

    Hot loop for millions of rows: dates and metric names are validated once per distinct value; the
    duplicate check keeps 12 bytes a row (a packed key and the line), sorted once at the end."""
    ids: dict[str, int] = {
        ext: aid for ext, aid in conn.execute(select(Account.external_id, Account.id)) if ext is not None
    }
    check = _SignalCheck(today, iso=conn.dialect.name == "sqlite")
    bad = Collector()
    unknown: dict[str, list[int]] = {}
    keys, lines = array("q"), array("I")
    in_batch: dict[int, int] = {}
    batch: list[tuple[Any, ...]] = []
    result = Result()
    for line, vals, error in _signal_tuples(rows):
        if error or vals is None:
            bad.add(line, error or "unreadable")
            continue
        try:
            day, key, value = check(vals)
        except ValueError as exc:
            bad.add(line, str(exc))
            continue
        ext, metric = vals[0], vals[2]
        account_id = ids.get(ext)
        if account_id is None:
            account_id = ids.get("" if ext is None else str(ext).strip())
            if account_id is None:
                unknown.setdefault("" if ext is None else str(ext).strip(), []).append(line)
                continue
        key |= account_id
        first = in_batch.get(key)
        if first is not None:  # caught here too: PostgreSQL refuses one upsert touching a row twice
            bad.add(line, f"{metric} for account {ext!r} on {day} appears again (first on line {first})")
            continue
        in_batch[key] = line
        keys.append(key)
        lines.append(line)
        if bad.bad or unknown:
            continue  # the batch is lost already: keep reading only to report every bad line
        batch.append((day, account_id, metric, value))
        if len(batch) >= BATCH:
            in_batch.clear()
            _flush(batch, write, result, progress)
    _report_unknown(unknown, bad)
    if not bad.bad:
        report_repeats(keys, lines, bad, _again)
    bad.raise_if_any()
    if batch:
        _flush(batch, write, result, None)
    if progress:
        progress(result.rows)
    return result


def _signal_tuples(rows: Records | Iterable[Row]) -> Iterable[Row]:
    """(line, (account_id, date, metric, value), error): a file's columns, or a source's records'."""
    if isinstance(rows, Records):
        return rows.columns(SIGNAL_FIELDS)
    return ((n, tuple(r.get(f) for f in SIGNAL_FIELDS) if r is not None else None, e) for n, r, e in rows)


class _SignalCheck:
    """One row's date, metric and value checked, each distinct date and metric once: returns the day
    as the driver takes it, the row's packed key without its account (day and metric bits), and the
    value. ValueError with the reason otherwise."""

    def __init__(self, today: date | None, *, iso: bool) -> None:
        self.iso = iso  # sqlite3 gets ISO text (its date adapter is deprecated)
        self.window = date_window(today, past_years=SIGNAL_PAST_YEARS, future_days=1)
        self.days: dict[Any, tuple[Any, int]] = {}  # raw date -> (day, its bits of the key)
        self.metrics: dict[Any, tuple[int, float, float]] = {}  # metric -> (its bits, lowest, highest)

    def __call__(self, vals: tuple[Any, ...]) -> tuple[Any, int, float]:
        _, day_raw, metric, value_raw = vals
        day = self.days.get(day_raw) or self._day(day_raw)
        bounds = self.metrics.get(metric) or self._metric(metric)
        if type(value_raw) is bool:  # JSON true would otherwise be stored as 1.0
            raise ValueError(f"value {value_raw!r} is not a number")
        try:
            value = float(value_raw)
        except (TypeError, ValueError, OverflowError):
            value = number_of(value_raw)  # `1,200`, `¥12,000`: off the hot path, only when float() fails
        if not bounds[1] <= value <= bounds[2]:
            if not math.isfinite(value):
                raise ValueError(f"value {value_raw!r} is not a finite number")
            raise ValueError(f"value {value_raw!r}: {metric} {value_problem(metric, value)}")
        return day[0], day[1] | bounds[0], value

    def _day(self, raw: Any) -> tuple[Any, int]:
        if raw is None or str(raw).strip() == "":
            raise ValueError("missing date")
        parsed = check_window(date_of(str(raw).strip(), "date"), self.window, "date")
        bits = (parsed.toordinal() - _ORDINAL_BASE) << (_METRIC_BITS + 32)
        self.days[raw] = day = (parsed.isoformat() if self.iso else parsed, bits)
        return day

    def _metric(self, metric: Any) -> tuple[int, float, float]:
        if metric is None or not _METRIC.match(str(metric)):
            raise ValueError(f"metric {metric!r}: letters, digits and _ . : - only, 1 to 64")
        if len(self.metrics) >= 1 << _METRIC_BITS:
            raise ValueError(f"more than {1 << _METRIC_BITS:,} distinct metrics in one file")
        bounds = self.metrics[metric] = (len(self.metrics) << 32, *RANGES.get(metric, (0.0, VALUE_MAX)))
        return bounds


def _flush(
    batch: list[tuple[Any, ...]],
    write: Callable[[list[tuple[Any, ...]]], Any],
    result: Result,
    progress: Callable[[int], None] | None,
) -> None:
    write(batch)
    result.rows += len(batch)
    batch.clear()
    if progress:
        progress(result.rows)


def _report_unknown(unknown: dict[str, list[int]], bad: Collector) -> None:
    """One bad line per unknown account_id, naming its first lines: a file for the wrong book has many."""
    for ext, lines in unknown.items():
        shown = ", ".join(str(n) for n in lines[:5]) + (
            f" and {len(lines) - 5} more" if len(lines) > 5 else ""
        )
        what = f"unknown account_id {ext!r}" if ext else "missing account_id"
        bad.add(
            lines[0],
            f"{what} (line {shown}); ingest it with the accounts first" if ext else f"{what} (line {shown})",
        )


def _again(first: int) -> str:
    return f"the same account, date and metric appears again (first on line {first})"


def _parse(
    rows: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    required: tuple[str, ...],
    parse: Callable[[int, dict[str, Any]], T],
) -> list[tuple[int, T]]:
    """``parse`` applied to every readable record that has the ``required`` fields; each problem,
    a ValueError from ``parse`` included, reported with its line, and the batch refused if any."""
    bad = Collector()
    out: list[tuple[int, T]] = []
    for line, rec, error in rows:
        if error or rec is None:
            bad.add(line, error or "unreadable")
            continue
        try:
            missing = [f for f in required if text_of(rec, f) == ""]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            out.append((line, parse(line, rec)))
        except ValueError as exc:
            bad.add(line, str(exc))
    bad.raise_if_any()
    return out


def ingest_metrics(
    session: Session,
    rows: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    *,
    today: date | None = None,
) -> Result:
    """Company-level daily figures (funnel, inside-sales activity): upserted by (date, metric), so
    re-sending a day corrects it. Only the metrics the digest knows are accepted: a misspelt name
    would otherwise vanish without a word."""
    first: dict[tuple[date, str], int] = {}
    window = date_window(today, past_years=SIGNAL_PAST_YEARS, future_days=1)

    def parse(line: int, rec: dict[str, Any]) -> tuple[date, str, float]:
        day = check_window(date_of(text_of(rec, "date"), "date"), window, "date")
        metric = text_of(rec, "metric").lower()
        if metric not in COMPANY_METRICS:
            raise ValueError(f"metric {metric!r} is not one Baton knows ({', '.join(COMPANY_METRICS)})")
        value = number_of(rec["value"])
        if not math.isfinite(value) or not 0 <= value <= VALUE_MAX:
            raise ValueError(f"value {rec['value']!r} must be a number from 0 to 1e12")
        if (day, metric) in first:
            raise ValueError(f"{metric} on {day} appears again (first on line {first[day, metric]})")
        first[day, metric] = line
        return day, metric, value

    if isinstance(rows, Records):
        rows = rows.expecting(METRIC_FIELDS)
    values = _parse(rows, METRIC_FIELDS, parse)
    for _, (day, metric, value) in values:
        session.merge(CompanyMetric(day=day, metric=metric, value=value))
    session.flush()
    return Result(rows=len(values))


def ingest_touches(
    session: Session,
    rows: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    *,
    clock: Clock,
    timezone: str,
    source: str = "import",
) -> Result:
    """Touches logged by other systems (the marketing tool's automated welcome email, a usage-check
    job): ``account_id`` (or ``account``, the name), ``date``, ``kind`` and an optional ``note``. The
    same kind on the same day for the same account is recorded once, so a file can be sent again;
    ``result.details["skipped"]`` counts those."""
    if isinstance(rows, Records):
        rows = rows.expecting(("account_id", "account", *TOUCH_FIELDS, "note"))
    today = clock().astimezone(ZoneInfo(timezone)).date()
    parsed = _parse(rows, TOUCH_FIELDS, _touch_parser(session, today))
    serialize(session, "touches")  # a retried request waits here, then finds the first one's touches
    seen = {
        (aid, kind, at.astimezone(ZoneInfo(timezone)).date())
        for aid, kind, at in session.execute(select(Touch.account_id, Touch.kind, Touch.occurred_at))
    }
    result = Result(details={"skipped": 0})
    for _, (aid, kind, day, note) in parsed:
        if (aid, kind, day) in seen:
            result.details["skipped"] += 1
            continue
        seen.add((aid, kind, day))
        when = datetime.combine(day, time(12), ZoneInfo(timezone))  # noon: the same day in any nearby zone
        log_touch(
            session,
            account_id=aid,
            kind=kind,
            note=note,
            actor=Actor(source),
            clock=clock,
            occurred_at=min(when, clock()),
        )
        result.rows += 1
    return result


_TouchRow = tuple[int, Any, date, str]  # account id, kind, day, note


def _touch_parser(session: Session, today: date) -> Callable[[int, dict[str, Any]], _TouchRow]:
    """A touch line as (account id, kind, day, note), its account found by account_id or by name."""
    ids = {ext: aid for ext, aid in session.execute(select(Account.external_id, Account.id)) if ext}
    names = {key: aid for key, aid in session.execute(select(Account.name_key, Account.id))}
    window = date_window(today, past_years=SIGNAL_PAST_YEARS, future_days=0)

    def parse(_: int, rec: dict[str, Any]) -> _TouchRow:
        ext, name = text_of(rec, "account_id"), text_of(rec, "account")
        if not ext and not name:
            raise ValueError("missing account_id (or account, the account's name)")
        aid = ids.get(ext) if ext else names.get(normalize_name(name))
        if aid is None:
            raise ValueError(
                f"unknown account_id {ext!r}; ingest it with the accounts first"
                if ext
                else f"unknown account {name!r}"
            )
        kind = ALIASES.get(text_of(rec, "kind").lower())
        if kind is None:
            raise ValueError(
                f"kind {text_of(rec, 'kind')!r}: use kickoff, check-in, qbr, welcome or usage-check"
            )
        day = date_of(text_of(rec, "date"), "date")
        if day > today:
            raise ValueError(f"date {day} is in the future")
        check_window(day, window, "date")
        note = text_of(rec, "note")
        if problem := text_problem(note, Touch.note):
            raise ValueError(f"note {describe(problem)}")
        return aid, kind, day, note

    return parse


@dataclass(frozen=True)
class Batch:
    """Where a file comes from and which day it is, for every kind of file alike."""

    clock: Clock
    timezone: str
    as_of: date  # the accounts file's day
    source: str = "import"  # touches: who logged them
    progress: Callable[[int], None] | None = None

    @property
    def today(self) -> date:
        return local_date(self.clock, self.timezone)


_IN_ONE_UNIT: dict[str, Callable[[Session, Records, Batch], Result]] = {
    "metrics": lambda s, rows, b: ingest_metrics(s, rows, today=b.today),
    "touches": lambda s, rows, b: ingest_touches(
        s, rows, clock=b.clock, timezone=b.timezone, source=b.source
    ),
}
KINDS = ("signals", "accounts", *_IN_ONE_UNIT)


def ingest(db: Database, kind: str, rows: Records, batch: Batch) -> Result:
    """The one way a file of any kind goes in, for the CLI and the API alike: signals and accounts (the
    big ones) through short transactions on SQLite, the others in one unit of work of their own."""
    if kind == "signals":
        return import_signals(db, rows, clock=batch.clock, progress=batch.progress, today=batch.today)
    if kind == "accounts":
        return import_accounts(db, rows, as_of=batch.as_of, clock=batch.clock, today=batch.today)
    with db.session() as session:
        return _IN_ONE_UNIT[kind](session, rows, batch)
