"""Queueing a Slack message in the outbox, inside the caller's transaction: the message exists if and
only if the change it announces was committed. ``bot/delivery.py`` sends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from storage.models import Alert, Outbox


def enqueue(session: Session, alert: Alert | None, action: str, at: datetime, **payload: Any) -> Outbox:
    row = Outbox(
        alert_id=alert.id if alert else None,
        action=action,
        payload=payload,
        state="pending",
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(row)
    return row
