"""Queueing a Slack message in the outbox, inside the caller's transaction: the message exists if and
only if the change it announces was committed. ``bot/delivery.py`` sends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Alert, Outbox

# The message that creates the thing later messages update or reply to; they wait for it.
FIRST_POST = {"alert": "post", "handoff": "card"}


def enqueue(
    session: Session,
    alert: Alert | None,
    action: str,
    at: datetime,
    *,
    handoff_id: int | None = None,
    **payload: Any,
) -> Outbox:
    row = Outbox(
        alert_id=alert.id if alert else None,
        handoff_id=handoff_id,
        action=action,
        payload=payload,
        state="pending",
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    session.add(row)
    return row


def first_post_pending(
    session: Session, *, alert_id: int | None = None, handoff_id: int | None = None
) -> bool:
    """Whether the alert's card (or the handoff's) is still queued: not yet sent, not given up on."""
    if alert_id is not None:
        where = (Outbox.alert_id == alert_id, Outbox.action == FIRST_POST["alert"])
    else:
        where = (Outbox.handoff_id == handoff_id, Outbox.action == FIRST_POST["handoff"])
    stmt = select(Outbox.id).where(*where, Outbox.state.in_(("pending", "in_flight"))).limit(1)
    return session.scalar(stmt) is not None
