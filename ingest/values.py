"""Cell values as people type them in Excel, in Japan and elsewhere: `¥50,000`, `50,000円`,
`$1,200.50`, full-width `５０，０００`, dates as `2026/11/30` or `2026年11月30日`.

Plain functions, so the CLI's arguments read dates the way files do."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

DATE_FORMATS = "YYYY-MM-DD (2026-11-30, 2026/11/30 or 2026年11月30日)"
# Excel in Japan writes ¥ as byte 0x5C, which CP932 decodes as a backslash: `\50,000` is ¥50,000.
_SYMBOLS: dict[str, tuple[str, ...]] = {
    "¥": ("JPY", "CNY"),
    "\\": ("JPY",),
    "円": ("JPY",),
    "$": ("USD", "SGD", "AUD", "CAD", "HKD", "NZD", "TWD"),
    "€": ("EUR",),
    "£": ("GBP",),
}
_AMOUNT = re.compile(
    r"(?P<neg>-)?(?P<pre>[¥\\$€£])?\s*(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(?P<post>円)?"
)
_DATE = re.compile(
    r"(?P<y>\d{4})(?:[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})|年\s*(?P<jm>\d{1,2})\s*月\s*(?P<jd>\d{1,2})\s*日)"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"  # Excel's `2026/11/30 0:00`: the day is what counts
)


def _fold(text: str) -> str:
    """Full-width digits, letters, punctuation and ￥ to their ASCII forms (NFKC keeps 円 and 年月日)."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_amount(text: str) -> tuple[Decimal, str | None]:
    """The amount and the currency its symbol implies (None without one); ValueError if it is not one."""
    m = _AMOUNT.fullmatch(_fold(text))
    if m is None or (m["pre"] and m["post"] and m["pre"] not in "¥\\"):
        raise ValueError(text)
    try:
        value = Decimal(m["num"].replace(",", ""))
    except InvalidOperation:
        raise ValueError(text) from None
    symbol = m["pre"] or m["post"]
    return (-value if m["neg"] else value), symbol


def currencies_for(symbol: str) -> tuple[str, ...]:
    """The currency codes a symbol can stand for, the usual one first."""
    return _SYMBOLS[symbol]


def parse_number(text: str) -> float:
    """A signal or metric value: `1,200`, `１２００`, `¥12,000`, `-3.5`; ValueError if it is not one."""
    return float(parse_amount(text)[0])


def parse_count(text: str) -> int:
    """A whole number such as seats: `1,200` or `１２００`; ValueError otherwise."""
    value, symbol = parse_amount(text)
    if symbol or value != value.to_integral_value():
        raise ValueError(text)
    return int(value)


def parse_date(text: str) -> date:
    """A calendar date in the forms Excel and people write; ValueError otherwise."""
    folded = _fold(text)
    m = _DATE.fullmatch(folded)
    if m is None:
        return date.fromisoformat(folded)  # the ISO forms Python knows (20261130, 2026-W48-1)
    return date(int(m["y"]), int(m["m"] or m["jm"]), int(m["d"] or m["jd"]))


def header_name(text: str) -> str:
    """A column name as Baton spells it: `\ufeffAccount ID ` and `ＭＲＲ` become account_id and mrr."""
    return re.sub(r"[\s-]+", "_", _fold(text.lstrip("\ufeff"))).strip("_").lower()


VALUE_MAX = 10.0**12  # a daily usage figure beyond a trillion is a unit or parsing mistake, not usage
RANGES = {"nps": (0.0, 10.0)}  # metrics with a scale of their own; every other one is a count >= 0
FALLBACK_DAYS = (date(1990, 1, 1), date(2100, 12, 31))  # when the caller passes no today


def value_problem(metric: str, value: float) -> str | None:
    """Why a signal's value is implausible (negative, off its scale, beyond VALUE_MAX), or None."""
    lo, hi = RANGES.get(metric, (0.0, VALUE_MAX))
    if not lo <= value <= hi:
        if metric in RANGES:
            return f"{metric} must be between {lo:g} and {hi:g}"
        return "must be a count between 0 and 1e12" if value >= 0 else "must not be negative"
    return None


def years_before(day: date, years: int) -> date:
    return date(day.year - years, 1, 1)


def date_window(today: date | None, *, past_years: int, future_days: int) -> tuple[date, date]:
    """The dates a file may plausibly hold around ``today`` (the caller's clock)."""
    if today is None:
        return FALLBACK_DAYS
    return years_before(today, past_years), today + timedelta(days=future_days)


def check_window(day: date, window: tuple[date, date], what: str) -> date:
    """``day``, or ValueError naming the range (year 1 or 9999 is a typo, and 9999 would stay "latest")."""
    lo, hi = window
    if not lo <= day <= hi:
        raise ValueError(f"{what} {day.isoformat()} is outside the plausible range {lo} to {hi}")
    return day
