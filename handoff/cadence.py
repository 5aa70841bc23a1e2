"""The touch model's onboarding cadence (the first 90 days after a handoff), touch logging and the
per-account tier override. The plans live in baton.yml (``cadence.plans``); by default:

High touch: a kickoff within a week, check-ins weekly in month one, every two weeks in month two and
monthly in month three. Mid touch: a kickoff within two weeks and monthly check-ins. Tech touch: an
automated welcome and a usage check. Onboarding is complete when every milestone has a logged touch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.lookup import find_account, similar_account_names
from accounts.tiers import Tier, tier_of
from clock import Clock, local_day
from handoff import service
from handoff.checklist import FieldError
from handoff.service import Actor, EventKind
from settings import CadenceRules
from storage.directory import email_key, owner
from storage.models import Account, Handoff, SlackUserEmail, Touch

EARLY_DAYS = 30


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


@dataclass(frozen=True)
class Milestone:
    kind: Kind
    due: date
    done_on: date | None


def plan(
    tier: str, start: date, touches: list[tuple[str, date]], rules: CadenceRules | None = None
) -> list[Milestone]:
    """The onboarding milestones for ``tier`` from ``start`` (the plans in baton.yml), each matched to
    the n-th touch of its kind (a second check-in satisfies the second check-in milestone). Touches
    from up to ``EARLY_DAYS`` before ``start`` count (a kickoff held before the paperwork was done);
    older ones belong to an earlier onboarding of the same account."""
    plans = (rules or CadenceRules()).plans
    by_kind: dict[str, list[date]] = {}
    since = start - timedelta(days=EARLY_DAYS)
    for kind, day in sorted((t for t in touches if t[1] >= since), key=lambda t: t[1]):
        by_kind.setdefault(kind, []).append(day)
    used: dict[str, int] = {}
    out = []
    for kind, days in plans[tier] if tier in plans else plans["mid"]:  # an empty plan is a choice
        n = used.get(kind, 0)
        logged = by_kind.get(kind, [])
        out.append(
            Milestone(Kind(kind), start + timedelta(days=days), logged[n] if n < len(logged) else None)
        )
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


class FutureTouch(ValueError):
    """A touch dated after today."""


def may_log_touch(session: Session, account: Account, actor: Actor) -> bool:
    """Customer success logs touches for any account; anyone else only for an account they own (its
    CSM, by the owner rule alerts and reminders use): the touches are what the cadence counts."""
    if actor.is_cs:
        return True
    mapped: dict[str, str] = {}
    if account.csm_email:
        row = session.get(SlackUserEmail, email_key(account.csm_email))
        if row is not None and row.user_id:
            mapped[row.email] = row.user_id
    return owner(account, latest_handoff(session, account.id), mapped) == actor.user_id


def find_touch_account(
    session: Session, *, account_name: str | None = None, account_id: int | None = None
) -> Account:
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is None:
            raise service.NotFound(account=str(account_id), suggestions=[])
        return account
    account = find_account(session, account_name or "")
    if account is None:
        name = account_name or ""
        raise service.NotFound(account=name, suggestions=similar_account_names(session, name))
    return account


def log_person_touch(
    session: Session,
    *,
    account_name: str | None = None,
    account_id: int | None = None,
    kind: Kind,
    note: str,
    actor: Actor,
    clock: Clock,
    occurred_at: datetime | None = None,
    rules: CadenceRules | None = None,
) -> tuple[Touch, list[Milestone]]:
    """``log_touch`` for a person (Slack): refused with ``NotAllowed`` before anything is written unless
    they are in CS or the account's CSM."""
    account = find_touch_account(session, account_name=account_name, account_id=account_id)
    if not may_log_touch(session, account, actor):
        raise service.NotAllowed(action="touch", account=account.name)
    return log_touch(
        session,
        account_id=account.id,
        kind=kind,
        note=note,
        actor=actor,
        clock=clock,
        occurred_at=occurred_at,
        rules=rules,
    )


def log_touch(
    session: Session,
    *,
    account_name: str | None = None,
    account_id: int | None = None,
    kind: Kind,
    note: str,
    actor: Actor,
    clock: Clock,
    occurred_at: datetime | None = None,
    rules: CadenceRules | None = None,
) -> tuple[Touch, list[Milestone]]:
    """Record a touch, with an audit event on the account's latest handoff in the same transaction
    (an account Baton only knows from ingested data has no handoff: the touch row is its record).
    Returns the onboarding milestones as they stand now (empty without a handoff). People log through
    ``log_person_touch``, which checks who they are; systems (the touches ingest) come here directly."""
    now = clock()
    when = occurred_at or now
    if when > now:
        raise FutureTouch(when.isoformat())
    account = find_touch_account(session, account_name=account_name, account_id=account_id)
    touch = Touch(
        account_id=account.id,
        kind=kind,
        note=note.strip()[:2000] or None,
        logged_by=actor.user_id,
        occurred_at=when,
        logged_at=now,
    )
    session.add(touch)
    h = latest_handoff(session, account.id)
    if h is not None:
        details = {"kind": kind, "note": touch.note, "occurred_at": when.isoformat()}
        service.add_event(
            session, h, EventKind.TOUCH_LOGGED, actor.user_id, now, f"{kind} logged", details=details
        )
    session.flush()
    return touch, milestones_for(session, h, rules) if h is not None else []


def set_tier(session: Session, *, account_name: str, tier: str, actor: Actor, clock: Clock) -> Account:
    """Override an account's touch tier (CS only), audited on its latest handoff. Accounts known only
    from ingested data take their tier from the accounts file's ``touch_tier`` column instead."""
    if not actor.is_cs:
        raise service.NotAllowed(action="tier")
    if tier not in set(Tier):
        raise service.Invalid([FieldError("touch_tier", "unknown_tier")])
    account = find_account(session, account_name)
    if account is None:
        raise service.NotFound(account=account_name, suggestions=similar_account_names(session, account_name))
    h = latest_handoff(session, account.id)
    if h is None:
        raise service.NotFound(account=account_name, suggestions=[], no_handoff=True)
    before = tier_of(h.account, h)
    account.touch_tier = tier
    account.updated_at = clock()
    summary = f"touch tier {before} -> {tier}"
    details = {"from": before, "to": tier}
    service.add_event(session, h, EventKind.TIER_CHANGED, actor.user_id, clock(), summary, details=details)
    session.flush()
    return account


def latest_handoff(session: Session, account_id: int) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(Handoff.account_id == account_id).order_by(Handoff.id.desc()).limit(1)
    ).first()


def milestones_for(session: Session, h: Handoff, rules: CadenceRules | None = None) -> list[Milestone]:
    rows = session.execute(
        select(Touch.kind, Touch.occurred_at).where(Touch.account_id == h.account_id)
    ).all()
    tz = (rules or CadenceRules()).timezone
    days = [(k, local_day(at, tz)) for k, at in rows]
    return plan(tier_of(h.account, h), local_day(h.created_at, tz), days, rules)


def onboarding_completion(
    session: Session, start: date, end: date, rules: CadenceRules | None = None
) -> tuple[int, int]:
    """(completed, total) over the handoffs whose onboarding ended between ``start`` and ``end``:
    the onboarding completion rate's numerator and denominator."""
    c = rules or CadenceRules()
    first = start - timedelta(days=c.onboarding_days)
    last = end - timedelta(days=c.onboarding_days)
    started = {h: local_day(h.created_at, c.timezone) for h in session.scalars(select(Handoff))}
    handoffs = [h for h, day in started.items() if first <= day <= last]
    done = sum(
        completed(milestones_for(session, h, rules), started[h] + timedelta(days=c.onboarding_days))
        for h in handoffs
    )
    return done, len(handoffs)
