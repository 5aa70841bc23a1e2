"""The touch model's onboarding cadence (the first 90 days after a handoff) and touch logging.

High touch: a kickoff within a week, check-ins weekly in month one, every two weeks in month two and
monthly in month three. Mid touch: a kickoff within two weeks and monthly check-ins. Tech touch: an
automated welcome and a usage check. Onboarding is complete when every milestone has a logged touch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from clock import Clock
from handoff import service
from handoff.service import Actor, EventKind
from storage.models import Handoff, HandoffEvent, Touch

ONBOARDING_DAYS = 90


class Kind(StrEnum):
    KICKOFF = "kickoff"
    CHECK_IN = "check_in"
    QBR = "qbr"
    WELCOME = "welcome"
    USAGE_CHECK = "usage_check"


# How people type them after `/handoff touch Account ...`
ALIASES = {
    "kickoff": Kind.KICKOFF,
    "kick-off": Kind.KICKOFF,
    "check-in": Kind.CHECK_IN,
    "checkin": Kind.CHECK_IN,
    "check_in": Kind.CHECK_IN,
    "qbr": Kind.QBR,
    "welcome": Kind.WELCOME,
    "usage-check": Kind.USAGE_CHECK,
    "usage_check": Kind.USAGE_CHECK,
    "キックオフ": Kind.KICKOFF,
    "定例": Kind.CHECK_IN,
}

PLANS: dict[str, list[tuple[Kind, int]]] = {  # (kind, due this many days after the handoff)
    "high": [
        (Kind.KICKOFF, 7),
        (Kind.CHECK_IN, 14),
        (Kind.CHECK_IN, 21),
        (Kind.CHECK_IN, 28),
        (Kind.CHECK_IN, 42),
        (Kind.CHECK_IN, 56),
        (Kind.CHECK_IN, 90),
    ],
    "mid": [(Kind.KICKOFF, 14), (Kind.CHECK_IN, 30), (Kind.CHECK_IN, 60), (Kind.CHECK_IN, 90)],
    "tech": [(Kind.WELCOME, 1), (Kind.USAGE_CHECK, 30)],
}


@dataclass(frozen=True)
class Milestone:
    kind: Kind
    due: date
    done_on: date | None


def plan(tier: str, start: date, touches: list[tuple[str, date]]) -> list[Milestone]:
    """The onboarding milestones for ``tier`` from ``start``, each matched to the n-th logged touch of
    its kind (a second check-in satisfies the second check-in milestone)."""
    by_kind: dict[str, list[date]] = {}
    for kind, day in sorted(touches, key=lambda t: t[1]):
        by_kind.setdefault(kind, []).append(day)
    used: dict[str, int] = {}
    out = []
    for kind, days in PLANS.get(tier, PLANS["mid"]):
        n = used.get(kind, 0)
        logged = by_kind.get(kind, [])
        out.append(Milestone(kind, start + timedelta(days=days), logged[n] if n < len(logged) else None))
        used[kind] = n + 1
    return out


def completed(milestones: list[Milestone], by: date) -> bool:
    return all(m.done_on is not None and m.done_on <= by for m in milestones)


def parse_touch(text: str) -> tuple[str, Kind, str] | None:
    """`Acme Corp kickoff Went well` -> ("Acme Corp", kickoff, "Went well"): the first word naming a kind
    splits the account name from the note."""
    words = text.split()
    for i, word in enumerate(words):
        kind = ALIASES.get(word.lower())
        if kind is not None and i > 0:
            return " ".join(words[:i]), kind, " ".join(words[i + 1 :])
    return None


def log_touch(
    session: Session, *, account_name: str, kind: Kind, note: str, actor: Actor, clock: Clock
) -> tuple[Touch, list[Milestone]]:
    """Record a touch (and an audit event on the account's latest handoff, in the same transaction);
    returns the onboarding milestones as they stand now."""
    h = service.latest_for_account(session, account_name)  # NotFound with suggestions when unknown
    now = clock()
    touch = Touch(
        account_id=h.account_id,
        kind=kind,
        note=note.strip()[:2000] or None,
        logged_by=actor.user_id,
        occurred_at=now,
    )
    session.add(touch)
    session.add(
        HandoffEvent(
            handoff_id=h.id,
            kind=EventKind.TOUCH_LOGGED,
            actor_user_id=actor.user_id,
            summary=f"{kind} logged",
            details={"kind": kind, "note": touch.note},
            occurred_at=now,
        )
    )
    session.flush()
    return touch, milestones_for(session, h)


def milestones_for(session: Session, h: Handoff) -> list[Milestone]:
    rows = session.execute(
        select(Touch.kind, Touch.occurred_at).where(Touch.account_id == h.account_id)
    ).all()
    return plan(h.touch_tier, h.created_at.date(), [(k, at.date()) for k, at in rows])


def onboarding_completion(session: Session, start: date, end: date) -> tuple[int, int]:
    """(completed, total) over the handoffs whose 90-day onboarding ended between ``start`` and ``end``:
    the onboarding completion rate's numerator and denominator."""
    first = start - timedelta(days=ONBOARDING_DAYS)
    last = end - timedelta(days=ONBOARDING_DAYS)
    handoffs = [h for h in session.scalars(select(Handoff)) if first <= h.created_at.date() <= last]
    done = sum(
        completed(milestones_for(session, h), h.created_at.date() + timedelta(days=ONBOARDING_DAYS))
        for h in handoffs
    )
    return done, len(handoffs)
