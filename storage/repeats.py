"""Requests that arrive more than once: Slack's retries, a double-clicked Submit, a signed request
replayed inside its five-minute window. The entry point claims the request's key in the unit of work
that makes the change; a repeat finds the key (or collides with it on the primary key, when both
copies arrive at once), changes nothing and is answered from what the first one recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import RequestSeen

KEEP = timedelta(days=1)  # far past Slack's retries (minutes) and its 5-minute signature window
KEY_MAX = 200


class Repeated(Exception):
    """This request was acted on already; ``result`` is what the first one recorded (empty when the
    first is still committing: both arrived at once)."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("repeated request")
        self.result = result


def claim(session: Session, key: str | None, now: datetime) -> None:
    """Record ``key`` in this unit of work, or raise ``Repeated``. Call it before the change, so a
    copy arriving meanwhile waits on the key (PostgreSQL's unique index, SQLite's write lock) and then
    fails here instead of repeating the change. ``None`` (a request with nothing to key it) claims nothing."""
    if not key:
        return
    key = key[:KEY_MAX]
    seen = session.scalar(select(RequestSeen.result).where(RequestSeen.key == key))
    if seen is not None:
        raise Repeated(dict(seen))
    session.execute(delete(RequestSeen).where(RequestSeen.created_at < now - KEEP))
    session.add(RequestSeen(key=key, result={}, created_at=now))
    try:
        session.flush()
    except IntegrityError:  # the other copy committed first; the caller's unit of work rolls back
        raise Repeated({}) from None


def remember(session: Session, key: str | None, **result: Any) -> None:
    """What the first request answered, for its repeats (e.g. the text the user was shown)."""
    if not key:
        return
    row = session.get(RequestSeen, key[:KEY_MAX])
    if row is not None:
        row.result = result


def result_of(session: Session, key: str) -> dict[str, Any]:
    return dict(session.scalar(select(RequestSeen.result).where(RequestSeen.key == key[:KEY_MAX])) or {})
