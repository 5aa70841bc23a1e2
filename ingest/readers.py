"""Reading files of every kind: CSV and JSON (an array or one object a line) as records, streamed one at a
time; what each kind holds (`app.py ingest --help`); how a refused batch reports its bad lines."""

from __future__ import annotations

import csv
import json
import operator
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from digest.funnel import METRICS as COMPANY_METRICS
from ingest.textfile import UnreadableText
from ingest.values import (
    DATE_FORMATS,
    header_name,
    parse_date,
    parse_number,
)

SIGNAL_FIELDS = ("account_id", "date", "metric", "value")
ACCOUNT_REQUIRED = ("account_id", "name", "plan", "mrr", "seats", "contract_start", "renewal_date")
ACCOUNT_OPTIONAL = ("csm_email", "segment", "currency", "status", "churned_on", "touch_tier")
METRIC_FIELDS = ("date", "metric", "value")
TOUCH_FIELDS = ("date", "kind")  # and account_id, or account (the name) for handoff-born accounts
MAX_REPORTED = 50


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


class _Chunked:
    """A text stream read in chunks of CHUNK for ``raw_decode``: ``buf[pos:]`` is what is not consumed
    yet, so memory holds about one item, not the whole body."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.buf, self.pos = stream, "", 0

    def more(self) -> bool:
        """Drop what is consumed and append the next chunk; False at the end of the stream."""
        chunk = self.stream.read(CHUNK)
        self.buf, self.pos = self.buf[self.pos :] + chunk, 0
        return bool(chunk)

    def peek(self) -> str:
        """The next character that is not whitespace, not consumed; "" at the end of the stream."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def decode(self) -> tuple[Any, str | None]:
        """The next JSON value, and None; or None and the problem. A value that may go on in the next
        chunk (a number at the buffer's end, a string or object cut by it) is decoded again with more."""
        while True:
            try:
                item, end = _DECODER.raw_decode(self.buf, self.pos)
                if end == len(self.buf) and self.more():  # a number may go on in the next chunk
                    continue
                self.pos = end
                return item, None
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 32
                if cut and len(self.buf) - self.pos <= ITEM_MAX and self.more():
                    continue
                if cut and len(self.buf) - self.pos > ITEM_MAX:
                    return None, f"item longer than {ITEM_MAX:,} characters"
                return None, _decode_problem(exc)
            except (ValueError, RecursionError) as exc:
                return None, _decode_problem(exc)


def _json_array(stream: IO[str]) -> Iterator[Row]:
    """The items of one JSON array (its ``[`` already read), decoded one at a time with ``raw_decode``
    over a buffer refilled in chunks (see _Chunked): memory holds one item, not the whole body."""
    text = _Chunked(stream)
    n = 0
    if text.peek() == "]":
        text.pos += 1
    else:
        while True:
            n += 1
            text.peek()
            item, problem = text.decode()
            if problem is not None:
                yield n, None, problem
                return
            yield n, item, None
            sep = text.peek()
            text.pos += 1
            if sep == "]":
                break
            if sep != ",":
                yield n, None, "not valid JSON: expected , or ] after this item"
                return
    if text.peek():
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


class Collector:
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


def report_repeats(
    keys: array[int], lines: array[int], bad: Collector, message: Callable[[int], str]
) -> None:
    """Keys seen twice in a file, from packed keys and their lines (a few bytes a row, not the rows),
    sorted once at the end; ``message`` says it, given the first line."""
    import numpy as np

    packed = np.frombuffer(keys, dtype=np.int64)
    ordered = np.sort(packed)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    order = np.argsort(packed, kind="stable")
    ordered, at = packed[order], np.frombuffer(lines, dtype=np.uint32)[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    for i in repeats[:MAX_REPORTED]:
        bad.add(int(at[i + 1]), message(int(at[i])))
    bad.bad += max(0, len(repeats) - MAX_REPORTED)  # counted, not listed


def text_of(rec: dict[str, Any], key: str) -> str:
    v = rec.get(key)
    return "" if v is None else str(v).strip()


def number_of(raw: Any) -> float:
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


def date_of(value: str, what: str) -> date:
    try:
        return parse_date(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date: use {DATE_FORMATS}") from None
