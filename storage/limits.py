"""What the columns hold, read from the models: the boundary checks (handoff form, ingest) refuse what
PostgreSQL would refuse, and SQLite (which stores anything) gets the same answer, so no 500 on one
database and silent acceptance on the other."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String

_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))  # subclasses before Integer


def _type(attr: Any) -> Any:
    return attr.property.columns[0].type


def max_length(attr: Any) -> int | None:
    """A String(n) column's n (PostgreSQL counts characters, as ``len`` does); None for Text."""
    t = _type(attr)
    return t.length if isinstance(t, String) else None


def int_range(attr: Any) -> tuple[int, int]:
    """The smallest and largest value an integer column stores (PostgreSQL's integer is 32-bit)."""
    t = _type(attr)
    for cls, bits in _BITS:
        if isinstance(t, cls):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    raise TypeError(f"{attr} is not an integer column")


def text_problem(value: str, attr: Any = None) -> tuple[str, dict[str, int]] | None:
    """Why ``value`` cannot be stored in ``attr`` (any text column when None), as a message code and its
    parameters, or None: NUL characters and lone surrogates (PostgreSQL and UTF-8 refuse them), or more
    characters than the column holds."""
    if "\x00" in value:
        return "nul_character", {}
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not_text", {}
    limit = max_length(attr) if attr is not None else None
    if limit is not None and len(value) > limit:
        return "too_long", {"max": limit}
    return None


MESSAGES = {
    "nul_character": "contains a NUL character",
    "not_text": "contains a character that is not text (a lone surrogate)",
    "too_long": "is longer than {max} characters",
}


def describe(problem: tuple[str, dict[str, int]]) -> str:
    """The English phrase for a ``text_problem`` (ingest reports are English)."""
    code, params = problem
    return MESSAGES[code].format(**params)
