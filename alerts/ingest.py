"""Getting accounts and usage signals in: one code path for files, the HTTP API and the scheduled pull.

A batch is all or nothing: any bad line (malformed, or naming an unknown account) makes the whole batch
fail with every bad line and its reason, and nothing is written. Files from the CLI and the API go in
through ``ingest``: signals (the big ones) are checked into a private stage and applied in short
transactions (storage/imports.py), so a 200 MB file never holds the write lock that Slack's writes
wait on; the other kinds are one unit of work each. Memory stays flat: rows are read one at a time and
written in fixed-size batches; only the account-id map is held."""

from __future__ import annotations

import csv
import json
import math
import operator
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from alerts.textfile import UnreadableText, text_stream
from alerts.values import (
    DATE_FORMATS,
    RANGES,
    VALUE_MAX,
    check_window,
    currencies_for,
    date_window,
    header_name,
    parse_amount,
    parse_count,
    parse_date,
    parse_number,
    value_problem,
)
from clock import Clock, local_date
from digest.funnel import METRICS as COMPANY_METRICS
from handoff.cadence import ALIASES, log_touch
from handoff.checklist import AMOUNT_MAX, NAME_MAX, clean_name, name_problems, normalize_name
from handoff.service import Actor
from storage import imports
from storage.db import Database, serialize
from storage.limits import describe, int_range, text_problem
from storage.models import Account, AccountSnapshot, CompanyMetric, Handoff, Touch

__all__ = ["UnreadableText", "text_stream"]  # re-exported: callers read files through this module

T = TypeVar("T")
SIGNAL_FIELDS = ("account_id", "date", "metric", "value")
ACCOUNT_REQUIRED = ("account_id", "name", "plan", "mrr", "seats", "contract_start", "renewal_date")
ACCOUNT_OPTIONAL = ("csm_email", "segment", "currency", "status", "churned_on", "touch_tier")
TIERS = ("high", "mid", "tech")
MAX_REPORTED = 50
BATCH = 5000
SIGNAL_PAST_YEARS = 20
ACCOUNT_BATCH = 2000  # rows per batch: each batch looks its accounts up with IN lists of this size
AS_OF_PAST_YEARS, AS_OF_FUTURE_DAYS = (
    10,
    31,
)  # a far-future as_of would stay "latest" and freeze every account
CONTRACT_PAST_YEARS, CONTRACT_FUTURE_DAYS = 50, 20 * 366
SEATS_MAX = min(
    int_range(Account.seats)[1], int_range(AccountSnapshot.seats)[1]
)  # older usage data is a typo (year 1) rather than history
_ORDINAL_BASE = date(1900, 1, 1).toordinal()  # packed duplicate keys: 20 bits of day, 11 of metric, 32 of id
_METRIC_BITS = 11
_METRIC = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based line in the file (CSV header is line 1); item number for a JSON array; 0: no line
    message: str


class IngestError(Exception):
    """The batch was refused; ``problems`` lists bad lines (the first MAX_REPORTED), ``bad`` counts all."""

    def __init__(self, problems: list[Problem], bad: int) -> None:
        super().__init__(f"{bad} bad line(s)")
        self.problems = problems
        self.bad = bad

    def report(self) -> str:
        lines = [f"line {p.line}: {p.message}" if p.line else p.message for p in self.problems]
        if self.bad > len(self.problems):
            lines.append(f"... and {self.bad - len(self.problems)} more bad line(s)")
        return "\n".join(lines)


@dataclass
class Result:
    rows: int = 0
    created: int = 0
    updated: int = 0
    linked: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """What a file of one kind holds, for `app.py ingest --help`."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    example: str  # a header line and one row
    note: str = ""


def layouts() -> dict[str, Layout]:
    return {
        "accounts": Layout(
            ACCOUNT_REQUIRED,
            ACCOUNT_OPTIONAL,
            "account_id,name,plan,mrr,seats,contract_start,renewal_date\n"
            'A1,株式会社ミライ物流,Pro,"¥120,000",50,2026/01/01,2027/01/01',
        ),
        "signals": Layout(SIGNAL_FIELDS, (), "account_id,date,metric,value\nA1,2026-11-30,active_users,42"),
        "metrics": Layout(
            METRIC_FIELDS,
            (),
            "date,metric,value\n2026-11-30,leads,12",
            f"metric: {', '.join(COMPANY_METRICS)}",
        ),
        "touches": Layout(
            ("account_id (or account, the name)", "date", "kind"),
            ("note",),
            "account,date,kind,note\n株式会社ミライ物流,2026-11-20,welcome,sent by the marketing tool",
            "kind: kickoff, check-in, qbr, welcome or usage-check",
        ),
    }


def detect_format(name: str | None, content_type: str | None = None) -> str:
    """csv or json (JSON lines, or one JSON array), from a file name or a Content-Type."""
    probe = (content_type or "").lower() + " " + (name or "").lower()
    if "json" in probe:
        return "json"
    return "csv"


Row = tuple[int, Any, str | None]  # (line, record or None, error or None)


class Records:
    """The records of a CSV or JSON stream, read lazily: iterate for dicts, or call ``columns`` for
    tuples of chosen fields (the fast path for millions of signal rows: no dict per row)."""

    def __init__(self, stream: IO[str], fmt: str) -> None:
        self.stream, self.fmt = stream, fmt
        self._reader: Any = None
        self._known: tuple[str, ...] = ()

    def expecting(self, known: tuple[str, ...]) -> Records:
        """Refuse a CSV whose header names none of ``known`` (else: 200 with 0 rows, and nothing said)."""
        self._known = known
        return self

    def __iter__(self) -> Iterator[Row]:
        return self._guard(self._dicts())

    def columns(self, names: tuple[str, ...]) -> Iterator[Row]:
        """(line, tuple of ``names``' values, error); a missing column is an error on line 1."""
        return self._guard(self._columns(names))

    def _guard(self, rows: Iterator[Row]) -> Iterator[Row]:
        """Bytes that are not text in the stream's encoding end the read with UnreadableText."""
        try:
            yield from rows
        except UnicodeDecodeError:
            line = self._reader.line_num if self._reader is not None else None
            raise UnreadableText(getattr(self.stream, "encoding", None) or "utf-8", line) from None
        except csv.Error as exc:  # a field over csv.field_size_limit(): most often an unclosed quote
            line = self._reader.line_num if self._reader is not None else 1
            limit = csv.field_size_limit()
            reason = (
                f"a cell longer than {limit:,} characters (is a quote left open?)"
                if "field limit" in str(exc)
                else f"not readable as CSV: {exc}"
            )
            yield line, None, reason

    def _dicts(self) -> Iterator[Row]:
        if self.fmt != "csv":
            yield from _json_records(self.stream)
            return
        header, reader = self._csv()
        if header is None:
            yield 1, None, "empty file: expected a header line"
            return
        if self._known and not set(header) & set(self._known):
            yield 1, None, f"the header names none of {', '.join(self._known)} (it has {', '.join(header)})"
            return
        width = len(header)
        for row in reader:
            if len(row) != width:
                fitted = _trimmed(row, width)
                if fitted is None:
                    yield reader.line_num, None, f"expected {width} columns, found {len(row)}"
                if fitted is None or len(fitted) != width:
                    continue
                row = fitted
            yield reader.line_num, dict(zip(header, row, strict=True)), None

    def _columns(self, names: tuple[str, ...]) -> Iterator[Row]:
        if self.fmt != "csv":
            for line, rec, error in _json_records(self.stream):
                if rec is None:
                    yield line, None, error
                    continue
                values = tuple(rec.get(n) for n in names)
                nested = [n for n, v in zip(names, values, strict=True) if isinstance(v, (dict, list))]
                if nested:
                    yield line, None, f"{', '.join(nested)} must be a plain value, not a list or object"
                    continue
                yield line, values, None
            return
        header, reader = self._csv()
        if header is None:
            yield 1, None, "empty file: expected a header line"
            return
        missing = [n for n in names if n not in header]
        if missing:
            yield 1, None, f"header lacks column(s) {', '.join(missing)} (has {', '.join(header)})"
            return
        pick = operator.itemgetter(*[header.index(n) for n in names])
        width = len(header)
        for row in reader:
            if len(row) == width:
                yield reader.line_num, pick(row), None
                continue
            fitted = _trimmed(row, width)
            if fitted is None:
                yield reader.line_num, None, f"expected {width} columns, found {len(row)}"
            elif len(fitted) == width:
                yield reader.line_num, pick(fitted), None

    def _csv(self) -> tuple[list[str] | None, Any]:
        reader = self._reader = csv.reader(self.stream)
        header = next(reader, None)
        if not header:
            return None, reader
        names = [header_name(h) for h in header]
        while names and not names[-1]:  # Excel writes empty trailing columns once a cell there was touched
            names.pop()
        return names or None, reader


def _trimmed(row: list[str], width: int) -> list[str] | None:
    """A row whose extra cells are all empty, cut to ``width``; [] for a blank row (skipped); None if bad."""
    if not any(c.strip() for c in row):
        return []
    if len(row) > width and not any(c.strip() for c in row[width:]):
        return row[:width]
    return None


def records(stream: IO[str], fmt: str) -> Records:
    """The records of a CSV (with a header) or JSON (JSON lines, or one array) stream."""
    return Records(stream, fmt)


ITEM_MAX = 1 << 20  # characters in one JSON item or line: a record is a few hundred
CHUNK = 1 << 16
_WS = re.compile(r"[ \t\r\n]*")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _decode_problem(exc: BaseException) -> str:
    """A JSON item's problem in words: bad syntax, a number Python refuses, nesting beyond the stack."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg}"
    if isinstance(exc, RecursionError):
        return "not valid JSON here: nested too deeply"
    if "digits" in str(exc):
        return "not valid JSON here: a number with more than 4,300 digits"
    return f"not valid JSON: {exc}"


def _json_records(stream: IO[str]) -> Iterator[Row]:
    first = stream.read(1)
    while first and first.isspace():
        first = stream.read(1)
    items = _json_array(stream) if first == "[" else _json_lines(first, stream)
    for n, item, error in items:
        if error is None and not isinstance(item, dict):
            error, item = "expected a JSON object", None
        yield n, item, error


def _json_array(stream: IO[str]) -> Iterator[Row]:
    """The items of one JSON array (its ``[`` already read), decoded one at a time with
    ``raw_decode`` over a buffer refilled in chunks: memory holds one item, not the whole body."""
    buf, pos = "", 0

    def more() -> bool:
        nonlocal buf, pos
        chunk = stream.read(CHUNK)
        buf, pos = buf[pos:] + chunk, 0
        return bool(chunk)

    def peek() -> str:
        nonlocal pos
        while True:
            pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    n = 0
    if peek() == "]":
        pos += 1
    else:
        while True:
            n += 1
            peek()
            while True:
                try:
                    item, end = _DECODER.raw_decode(buf, pos)
                    if end == len(buf) and more():  # a number may go on in the next chunk
                        continue
                    break
                except json.JSONDecodeError as exc:
                    cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(buf) - 32
                    if cut and len(buf) - pos <= ITEM_MAX and more():
                        continue
                    yield (
                        n,
                        None,
                        (
                            f"item longer than {ITEM_MAX:,} characters"
                            if cut and len(buf) - pos > ITEM_MAX
                            else _decode_problem(exc)
                        ),
                    )
                    return
                except (ValueError, RecursionError) as exc:
                    yield n, None, _decode_problem(exc)
                    return
            pos = end
            yield n, item, None
            sep = peek()
            pos += 1
            if sep == "]":
                break
            if sep != ",":
                yield n, None, "not valid JSON: expected , or ] after this item"
                return
    if peek():
        yield n, None, "not valid JSON: data after the closing ]"


def _json_lines(first: str, stream: IO[str]) -> Iterator[Row]:
    """JSON lines, each read with a length cap: one endless line cannot fill memory."""
    n = 0
    while True:
        raw = stream.readline(ITEM_MAX + 1)
        if n == 0:
            raw = first + raw
        if not raw:
            return
        n += 1
        if len(raw) > ITEM_MAX and not raw.endswith("\n"):
            yield n, None, f"line longer than {ITEM_MAX:,} characters"
            return
        if not raw.strip():
            continue
        try:
            yield n, _DECODER.decode(raw), None
        except (ValueError, RecursionError) as exc:
            yield n, None, _decode_problem(exc)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.bad = 0

    def add(self, line: int, message: str) -> None:
        self.bad += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(Problem(line, message))

    def raise_if_any(self) -> None:
        if self.bad:
            raise IngestError(sorted(self.problems, key=lambda p: p.line), self.bad)


def _text(rec: dict[str, Any], key: str) -> str:
    v = rec.get(key)
    return "" if v is None else str(v).strip()


def _number(raw: Any) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError:
            raise ValueError(f"value {raw!r:.20} is too large") from None
    try:
        if not isinstance(raw, str):
            raise ValueError
        return parse_number(raw)
    except ValueError:
        raise ValueError(f"value {raw!r} is not a number") from None


def _date(value: str, what: str) -> date:
    try:
        return parse_date(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date: use {DATE_FORMATS}") from None


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
    iso = conn.dialect.name == "sqlite"  # sqlite3 gets ISO text (its date adapter is deprecated)
    if isinstance(rows, Records):
        tuples: Iterable[Row] = rows.columns(SIGNAL_FIELDS)
    else:
        tuples = (
            (n, tuple(r.get(f) for f in SIGNAL_FIELDS) if r is not None else None, e) for n, r, e in rows
        )
    bad = _Collector()
    unknown: dict[str, list[int]] = {}
    days: dict[Any, Any] = {}
    ordinals: dict[Any, int] = {}
    window = date_window(today, past_years=SIGNAL_PAST_YEARS, future_days=1)
    metrics: dict[str, tuple[int, float, float]] = {}  # metric -> (index in keys, lowest, highest)
    keys, lines = array("q"), array("I")
    in_batch: dict[int, int] = {}
    batch: list[tuple[Any, ...]] = []
    append = batch.append
    result = Result()
    for line, vals, error in tuples:
        if error or vals is None:
            bad.add(line, error or "unreadable")
            continue
        ext, day_raw, metric, value_raw = vals
        day = days.get(day_raw)
        try:
            if day is None:
                if day_raw is None or str(day_raw).strip() == "":
                    raise ValueError("missing date")
                parsed = check_window(_date(str(day_raw).strip(), "date"), window, "date")
                day = days[day_raw] = parsed.isoformat() if iso else parsed
                ordinals[day_raw] = parsed.toordinal() - _ORDINAL_BASE
            bounds = metrics.get(metric)  # type: ignore[arg-type]
            if bounds is None:
                if metric is None or not _METRIC.match(str(metric)):
                    raise ValueError(f"metric {metric!r}: letters, digits and _ . : - only, 1 to 64")
                if len(metrics) >= 1 << _METRIC_BITS:
                    raise ValueError(f"more than {1 << _METRIC_BITS:,} distinct metrics in one file")
                bounds = metrics[metric] = (len(metrics), *RANGES.get(metric, (0.0, VALUE_MAX)))
            if type(value_raw) is bool:  # JSON true would otherwise be stored as 1.0
                raise ValueError(f"value {value_raw!r} is not a number")
            try:
                value = float(value_raw)  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                value = _number(value_raw)  # `1,200`, `¥12,000`: off the hot path, only when float() fails
            if not bounds[1] <= value <= bounds[2]:
                if not math.isfinite(value):
                    raise ValueError(f"value {value_raw!r} is not a finite number")
                raise ValueError(f"value {value_raw!r}: {metric} {value_problem(metric, value)}")
        except ValueError as exc:
            bad.add(line, str(exc))
            continue
        account_id = ids.get(ext)  # type: ignore[arg-type]
        if account_id is None:
            key = "" if ext is None else str(ext).strip()
            account_id = ids.get(key)
            if account_id is None:
                unknown.setdefault(key, []).append(line)
                continue
        key = (ordinals[day_raw] << (_METRIC_BITS + 32)) | (bounds[0] << 32) | account_id
        first = in_batch.get(key)
        if first is not None:  # caught here too: PostgreSQL refuses one upsert touching a row twice
            bad.add(line, f"{metric} for account {ext!r} on {day} appears again (first on line {first})")
            continue
        in_batch[key] = line
        keys.append(key)
        lines.append(line)
        if bad.bad or unknown:
            continue  # the batch is lost already: keep reading only to report every bad line
        append((day, account_id, metric, value))
        if len(batch) >= BATCH:
            in_batch.clear()
            write(batch)
            result.rows += len(batch)
            batch.clear()
            if progress:
                progress(result.rows)
    for ext, lines in unknown.items():
        shown = ", ".join(str(n) for n in lines[:5]) + (
            f" and {len(lines) - 5} more" if len(lines) > 5 else ""
        )
        what = f"unknown account_id {ext!r}" if ext else "missing account_id"
        bad.add(
            lines[0],
            f"{what} (line {shown}); ingest it with the accounts first" if ext else f"{what} (line {shown})",
        )
    if not bad.bad:
        _report_repeats(keys, lines, bad)
    bad.raise_if_any()
    if batch:
        write(batch)
        result.rows += len(batch)
    if progress:
        progress(result.rows)
    return result


METRIC_FIELDS = ("date", "metric", "value")


def _report_repeats(keys: array[int], lines: array[int], bad: _Collector) -> None:
    """Keys seen twice across batches (within one batch they were caught as they came)."""
    import numpy as np

    packed = np.frombuffer(keys, dtype=np.int64)
    ordered = np.sort(packed)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    order = np.argsort(packed, kind="stable")
    ordered, at = packed[order], np.frombuffer(lines, dtype=np.uint32)[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    for i in repeats[:MAX_REPORTED]:
        bad.add(int(at[i + 1]), f"the same account, date and metric appears again (first on line {at[i]})")
    bad.bad += max(0, len(repeats) - MAX_REPORTED)  # counted, not listed


def _parse(
    rows: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    required: tuple[str, ...],
    parse: Callable[[int, dict[str, Any]], T],
) -> list[tuple[int, T]]:
    """``parse`` applied to every readable record that has the ``required`` fields; each problem,
    a ValueError from ``parse`` included, reported with its line, and the batch refused if any."""
    bad = _Collector()
    out: list[tuple[int, T]] = []
    for line, rec, error in rows:
        if error or rec is None:
            bad.add(line, error or "unreadable")
            continue
        try:
            missing = [f for f in required if _text(rec, f) == ""]
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
        day = check_window(_date(_text(rec, "date"), "date"), window, "date")
        metric = _text(rec, "metric").lower()
        if metric not in COMPANY_METRICS:
            raise ValueError(f"metric {metric!r} is not one Baton knows ({', '.join(COMPANY_METRICS)})")
        value = _number(rec["value"])
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


TOUCH_FIELDS = ("date", "kind")  # and account_id, or account (the name) for handoff-born accounts


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
    ids = {ext: aid for ext, aid in session.execute(select(Account.external_id, Account.id)) if ext}
    today = clock().astimezone(ZoneInfo(timezone)).date()
    window = date_window(today, past_years=SIGNAL_PAST_YEARS, future_days=0)

    names = {key: aid for key, aid in session.execute(select(Account.name_key, Account.id))}

    def parse(_: int, rec: dict[str, Any]) -> tuple[int, Any, date, str]:
        ext, name = _text(rec, "account_id"), _text(rec, "account")
        if not ext and not name:
            raise ValueError("missing account_id (or account, the account's name)")
        aid = ids.get(ext) if ext else names.get(normalize_name(name))
        if aid is None:
            raise ValueError(
                f"unknown account_id {ext!r}; ingest it with the accounts first"
                if ext
                else f"unknown account {name!r}"
            )
        kind = ALIASES.get(_text(rec, "kind").lower())
        if kind is None:
            raise ValueError(
                f"kind {_text(rec, 'kind')!r}: use kickoff, check-in, qbr, welcome or usage-check"
            )
        day = _date(_text(rec, "date"), "date")
        if day > today:
            raise ValueError(f"date {day} is in the future")
        check_window(day, window, "date")
        note = _text(rec, "note")
        if problem := text_problem(note, Touch.note):
            raise ValueError(f"note {describe(problem)}")
        return aid, kind, day, note

    if isinstance(rows, Records):
        rows = rows.expecting(("account_id", "account", *TOUCH_FIELDS, "note"))
    parsed = _parse(rows, TOUCH_FIELDS, parse)
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


def _account_row(rec: dict[str, Any], window: tuple[date, date]) -> dict[str, Any]:
    missing = [f for f in ACCOUNT_REQUIRED if _text(rec, f) == ""]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        mrr, symbol = parse_amount(_text(rec, "mrr"))
        if mrr < 0 or mrr >= AMOUNT_MAX or mrr.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError
    except ValueError:
        raise ValueError(
            f"mrr {rec['mrr']!r} is not an amount >= 0 with at most 2 decimals (120000, ¥120,000, 120,000円)"
        ) from None
    try:
        seats = parse_count(_text(rec, "seats"))
        if not 0 <= seats <= SEATS_MAX:
            raise ValueError
    except ValueError:
        raise ValueError(f"seats {rec['seats']!r} is not a whole number from 0 to {SEATS_MAX:,}") from None
    start = check_window(_date(_text(rec, "contract_start"), "contract_start"), window, "contract_start")
    renewal = check_window(_date(_text(rec, "renewal_date"), "renewal_date"), window, "renewal_date")
    if renewal <= start:
        raise ValueError("renewal_date must be after contract_start")
    status = (_text(rec, "status") or "active").lower()
    if status not in ("active", "churned"):
        raise ValueError(f"status {status!r}: use active or churned")
    churned = _text(rec, "churned_on")
    churned_on = check_window(_date(churned, "churned_on"), window, "churned_on") if churned else None
    currency = _text(rec, "currency").upper() or (currencies_for(symbol)[0] if symbol else "JPY")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a 3-letter code")
    if symbol and currency not in currencies_for(symbol):
        raise ValueError(f"mrr {rec['mrr']!r} is not in {currency}, the row's currency")
    email = _text(rec, "csm_email") or None
    if email and not _EMAIL.match(email):
        raise ValueError(f"csm_email {email!r} is not an email address")
    name = clean_name(_text(rec, "name"))
    problems = [
        f"{what} {describe(problem)}"
        for what, value, attr in (
            ("account_id", _text(rec, "account_id"), Account.external_id),
            ("plan", _text(rec, "plan"), Account.plan),
            ("segment", _text(rec, "segment"), Account.segment),
            ("csm_email", email or "", Account.csm_email),
        )
        if (problem := text_problem(value, attr))
    ]
    if problem := name_problems(name):
        problems.insert(0, f"name {describe(problem)}{' once normalized' if len(name) <= NAME_MAX else ''}")
    if problems:  # cutting them would merge two accounts (account_id) or change them without a word
        raise ValueError("; ".join(problems))
    tier = _text(rec, "touch_tier").lower()
    if tier and tier not in TIERS:
        raise ValueError(f"touch_tier {tier!r}: use high, mid or tech (or leave it empty)")
    return {
        **({"touch_tier": tier} if tier else {}),  # empty: keep the current tier
        "external_id": _text(rec, "account_id"),
        "name": name,
        "plan": _text(rec, "plan"),
        "mrr": mrr,
        "seats": seats,
        "contract_start": start,
        "renewal_date": renewal,
        "status": status,
        "churned_on": churned_on if status == "churned" else None,
        "currency": currency,
        "segment": _text(rec, "segment") or None,
        "csm_email": email,
    }


def ingest_accounts(
    session: Session,
    rows: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    *,
    as_of: date,
    now: datetime,
    today: date | None = None,
) -> Result:
    """Upsert accounts by account_id and record how each stood on ``as_of`` (history for churn and NRR).
    ``today`` is the team's day (schedule.timezone) that bounds the dates; without it, ``now``'s UTC day.

    An account Baton already knows from a handoff (same name, no account_id yet) is linked, not duplicated.
    Rows are written in batches of ACCOUNT_BATCH as they stream in (the accounts each batch touched leave
    the session once flushed); any bad line refuses the file, and the caller's rollback undoes the batches.
    """
    today = today or now.date()
    try:
        check_window(
            as_of, date_window(today, past_years=AS_OF_PAST_YEARS, future_days=AS_OF_FUTURE_DAYS), "as_of"
        )
    except ValueError as exc:
        raise IngestError([Problem(0, str(exc))], 1) from None
    window = date_window(today, past_years=CONTRACT_PAST_YEARS, future_days=CONTRACT_FUTURE_DAYS)
    if isinstance(rows, Records):
        rows = rows.expecting(ACCOUNT_REQUIRED + ACCOUNT_OPTIONAL)
    bad = _Collector()
    seen: dict[str, int] = {}  # account_id -> its line: the one thing held for the whole file
    chunk: list[tuple[int, dict[str, Any]]] = []
    result = Result()
    for line, rec, error in rows:
        if error or rec is None:
            bad.add(line, error or "unreadable")
            continue
        try:
            row = _account_row(rec, window)
        except ValueError as exc:
            bad.add(line, str(exc))
            continue
        if row["external_id"] in seen:
            bad.add(
                line,
                f"account_id {row['external_id']!r} appears again (first on line {seen[row['external_id']]})",
            )
            continue
        seen[row["external_id"]] = line
        if bad.bad:
            continue  # the file is lost already: keep reading only to report every bad line
        chunk.append((line, row))
        if len(chunk) >= ACCOUNT_BATCH:
            _write_accounts(session, chunk, as_of=as_of, now=now, bad=bad, result=result)
            chunk.clear()
    if chunk and not bad.bad:
        _write_accounts(session, chunk, as_of=as_of, now=now, bad=bad, result=result)
    bad.raise_if_any()
    return result


def _write_accounts(
    session: Session,
    chunk: list[tuple[int, dict[str, Any]]],
    *,
    as_of: date,
    now: datetime,
    bad: _Collector,
    result: Result,
) -> None:
    """One batch of account rows: only the accounts it names are loaded, and they leave the session
    once written, so memory holds one batch however long the file is. Earlier batches are flushed,
    so a name taken by one is seen by the next."""
    keys = [normalize_name(row["name"]) for _, row in chunk]
    exts = [row["external_id"] for _, row in chunk]
    by_ext = {a.external_id: a for a in session.scalars(select(Account).where(Account.external_id.in_(exts)))}
    by_key = {a.name_key: a for a in session.scalars(select(Account).where(Account.name_key.in_(set(keys))))}
    ids = {a.id for a in (*by_ext.values(), *by_key.values())}
    with_handoff = set(
        session.scalars(select(Handoff.account_id).where(Handoff.account_id.in_(ids)).distinct())
    )
    latest = dict(
        session.execute(
            select(AccountSnapshot.account_id, func.max(AccountSnapshot.as_of))
            .where(AccountSnapshot.account_id.in_(ids))
            .group_by(AccountSnapshot.account_id)
        ).all()
    )
    for (line, row), key in zip(chunk, keys, strict=True):
        current = by_ext.get(row["external_id"])
        if current is not None and current.id in latest and _as_date(latest[current.id]) > as_of:
            result.rows += 1  # back-filling history: record the snapshot, keep today's account as it is
            result.updated += 1
            continue
        account = current
        holder = by_key.get(key)
        if account is None and holder is not None and holder.external_id is None:
            account, result.linked = holder, result.linked + 1
        if holder is not None and account is not None and holder.id != account.id:
            bad.add(
                line, f"name {row['name']!r} is already used by account {holder.external_id or holder.name!r}"
            )
            continue
        if account is None and holder is not None:
            bad.add(line, f"name {row['name']!r} is already used by account {holder.external_id!r}")
            continue
        if account is None:
            account = Account(created_at=now, name_key=key, **{k: row[k] for k in ("name", "external_id")})
            session.add(account)
            result.created += 1
        else:
            result.updated += 1
            if account.name_key != key:
                by_key.pop(account.name_key, None)
        for k, v in row.items():
            if k == "touch_tier" and account.id in with_handoff:
                continue  # the handoff (and `/handoff tier`) decide tiers of accounts Baton onboarded
            setattr(account, k, v)
        account.name_key, account.updated_at = key, now
        by_ext[row["external_id"]], by_key[key] = account, account
        result.rows += 1
    if bad.bad:
        return
    session.flush()
    written = [by_ext[row["external_id"]] for _, row in chunk]
    session.execute(
        delete(AccountSnapshot).where(
            AccountSnapshot.account_id.in_([a.id for a in written]), AccountSnapshot.as_of == as_of
        )
    )
    session.execute(
        insert(AccountSnapshot),
        [
            {"account_id": a.id, "as_of": as_of, **{k: row.get(k) for k in _SNAPSHOT}}
            for a, (_, row) in zip(written, chunk, strict=True)
        ],
    )
    for account in {id(a): a for a in (*by_ext.values(), *by_key.values())}.values():
        session.expunge(account)


_SNAPSHOT = ("plan", "mrr", "seats", "currency", "status", "renewal_date")  # renewal: the model's history


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


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
    "accounts": lambda s, rows, b: ingest_accounts(s, rows, as_of=b.as_of, now=b.clock(), today=b.today),
}
KINDS = ("signals", *_IN_ONE_UNIT)


def ingest(db: Database, kind: str, rows: Records, batch: Batch) -> Result:
    """The one way a file of any kind goes in, for the CLI and the API alike: signals (the big ones)
    through ``import_signals``'s short transactions, the others in one unit of work of their own."""
    if kind == "signals":
        return import_signals(db, rows, clock=batch.clock, progress=batch.progress, today=batch.today)
    with db.session() as session:
        return _IN_ONE_UNIT[kind](session, rows, batch)
