"""Account names as stored and shown, and the key accounts are looked up by. Handoffs, ingest and the
model's `explain` key accounts the same way, so `Acme Corp`, `ＡＣＭＥ corp` and `Acme\u200bCorp` are one."""

from __future__ import annotations

import unicodedata

from storage.limits import max_length, text_problem
from storage.models import Account

NAME_MAX: int = max_length(Account.name) or 200  # the modal's limit for one-line answers


def strip_format(text: str) -> str:
    """``text`` without format characters (Unicode category Cf: zero-width spaces and joiners,
    right-to-left overrides, the BOM): invisible, so `Zw\u200bCorp` would otherwise be a second ZwCorp."""
    if text.isascii():
        return text
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def clean_name(name: str) -> str:
    """An account name as stored and shown: no format characters, single-spaced."""
    return " ".join(strip_format(name).split())


def normalize_name(name: str) -> str:
    """The lookup key of an account name: width-folded (NFKC), case-folded, without format characters,
    single-spaced. Handoffs and ingest both key accounts by it."""
    return " ".join(strip_format(unicodedata.normalize("NFKC", name)).casefold().split())


def name_problems(name: str) -> tuple[str, dict[str, int]] | None:
    """Why an account name cannot be stored: its own column and its key's (NFKC can turn 12 characters
    into 216: `ﷺ` is 18), with one code for both since the person can only shorten the name."""
    cleaned = clean_name(name)
    return text_problem(cleaned, Account.name) or text_problem(normalize_name(cleaned), Account.name_key)
