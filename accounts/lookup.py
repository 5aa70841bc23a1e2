"""Finding an account by what a person typed: its name, whatever the width, case or invisible
characters (accounts/names.py), and the close names for a "did you mean" answer."""

from __future__ import annotations

import difflib

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.names import normalize_name
from storage.models import Account


def find_account(session: Session, name: str) -> Account | None:
    return session.scalars(select(Account).where(Account.name_key == normalize_name(name))).one_or_none()


def similar_account_names(session: Session, name: str, limit: int = 3) -> list[str]:
    """Names close to what was typed, for "did you mean" answers."""
    key = normalize_name(name)
    rows = session.execute(select(Account.name, Account.name_key)).all()
    by_key = {k: n for n, k in rows}
    contains = [n for n, k in rows if key and key in k]
    close = [by_key[k] for k in difflib.get_close_matches(key, list(by_key), n=limit, cutoff=0.6)]
    return list(dict.fromkeys(contains + close))[:limit]
