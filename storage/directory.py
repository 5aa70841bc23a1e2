"""Which Slack user owns an account, read from the database only.

An account's owner is the CSM its handoff assigned (mirrored on ``accounts.csm_user_id``), else the
Slack user its ``csm_email`` maps to. The mapping lives in ``slack_user_emails``; the bot fills it
(bot/directory.py, users.lookupByEmail) and domain code only reads it, so no domain package calls
Slack. An email Slack does not know is queued once, as an outbox message to the handoff channel."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Account, Handoff, SlackUserEmail
from storage.outbox import enqueue

FOUND_TTL = timedelta(days=7)  # a CSM's Slack account rarely changes: look again weekly
MISS_TTL = timedelta(days=1)  # a miss may be fixed (the CSM joins Slack): retry daily
NOT_FOUND = "users_not_found"
REPORT_NAMES = 10  # accounts named in one unknown-email report; the rest are counted


def email_key(email: str) -> str:
    """Emails compare case-insensitively, as Slack's lookup does."""
    return email.strip().lower()


def _unassigned() -> ColumnElement[bool]:
    """Active accounts whose owner depends on their csm_email: no CSM assigned by a handoff."""
    return and_(Account.status == "active", Account.csm_user_id.is_(None), Account.csm_email.is_not(None))


def emails_to_look_up(
    session: Session, now: datetime, *, found_ttl: timedelta = FOUND_TTL, miss_ttl: timedelta = MISS_TTL
) -> list[str]:
    """The csm_emails that matter (accounts without an assigned CSM) never looked up, or looked up
    longer ago than their TTL: found ones weekly, misses daily."""
    wanted = {
        email_key(e) for e in session.scalars(select(Account.csm_email).where(_unassigned()).distinct())
    }
    fresh = {
        email
        for email, user_id, at in session.execute(
            select(SlackUserEmail.email, SlackUserEmail.user_id, SlackUserEmail.looked_up_at)
        )
        if now - at < (found_ttl if user_id else miss_ttl)
    }
    return sorted(wanted - fresh)


def record_lookup(
    session: Session, email: str, user_id: str | None, error: str | None, now: datetime
) -> None:
    """Store one answer, insert or update in one statement (two instances may look up at once). A
    found email forgets its earlier report, so a later miss is reported again; a miss keeps it."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    key = email_key(email)
    stmt = insert(SlackUserEmail).values(
        email=key, user_id=user_id, error=None if user_id else error, looked_up_at=now
    )
    changes = (
        {"user_id": user_id, "error": None, "looked_up_at": now, "reported_at": None}
        if user_id
        else {"user_id": None, "error": error, "looked_up_at": now}
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["email"], set_=changes))


def mapped_users(session: Session) -> dict[str, str]:
    """Every email Slack knows, to its user id (one row per CSM: small)."""
    rows = session.execute(
        select(SlackUserEmail.email, SlackUserEmail.user_id).where(SlackUserEmail.user_id.is_not(None))
    )
    return {email: user_id for email, user_id in rows if user_id}


def owner(account: Account, handoff: Handoff | None, mapped: dict[str, str]) -> str | None:
    """The handoff's CSM if one was assigned, else the CSM mapped from the account's csm_email."""
    assigned = account.csm_user_id or (handoff.csm_user_id if handoff else None)
    if assigned:
        return assigned
    return mapped.get(email_key(account.csm_email)) if account.csm_email else None


def owners(session: Session, account_ids: Iterable[int]) -> dict[int, str | None]:
    """``owner`` for several accounts at once (alerts raised by one scan)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    latest = select(func.max(Handoff.id)).where(Handoff.account_id.in_(ids)).group_by(Handoff.account_id)
    handoffs = {h.account_id: h for h in session.scalars(select(Handoff).where(Handoff.id.in_(latest)))}
    mapped = mapped_users(session)
    return {
        a.id: owner(a, handoffs.get(a.id), mapped)
        for a in session.scalars(select(Account).where(Account.id.in_(ids)))
    }


def owned_by(user_id: str) -> ColumnElement[bool]:
    """A filter on accounts: those ``user_id`` owns, assigned or mapped from csm_email."""
    theirs = select(SlackUserEmail.email).where(SlackUserEmail.user_id == user_id)
    return or_(
        Account.csm_user_id == user_id,
        and_(Account.csm_user_id.is_(None), func.lower(func.trim(Account.csm_email)).in_(theirs)),
    )


def queue_unknown_reports(session: Session, now: datetime) -> int:
    """One handoff-channel message per email Slack does not know, naming the accounts it leaves
    without a CSM; marked reported in the same transaction, so a daily retry that misses again stays
    quiet. Returns the number of messages queued."""
    misses = session.scalars(
        select(SlackUserEmail.email).where(
            SlackUserEmail.error == NOT_FOUND, SlackUserEmail.reported_at.is_(None)
        )
    ).all()
    queued = 0
    for email in misses:
        names = session.scalars(
            select(Account.name)
            .where(_unassigned(), func.lower(func.trim(Account.csm_email)) == email)
            .order_by(Account.name)
        ).all()
        if not names:  # no account needs this email any more (a CSM was assigned meanwhile)
            continue
        won = session.execute(
            update(SlackUserEmail)
            .where(SlackUserEmail.email == email, SlackUserEmail.reported_at.is_(None))
            .values(reported_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:  # another instance reported it first
            continue
        enqueue(
            session,
            None,
            "csm_unknown",
            now,
            email=email,
            accounts=list(names[:REPORT_NAMES]),
            more=max(0, len(names) - REPORT_NAMES),
        )
        queued += 1
    session.flush()
    return queued


def learn(session: Session, email: str | None, user_id: str, now: datetime) -> bool:
    """Record that ``email`` is ``user_id``, known without a lookup (the Home tab's viewer, from
    users.info): only for an email some account needs and the cache does not already hold fresh."""
    if not email:
        return False
    key = email_key(email)
    row = session.get(SlackUserEmail, key)
    if row is not None and row.user_id == user_id and now - row.looked_up_at < FOUND_TTL:
        return False
    needed = session.scalar(
        select(Account.id).where(_unassigned(), func.lower(func.trim(Account.csm_email)) == key).limit(1)
    )
    if needed is None:
        return False
    record_lookup(session, key, user_id, None, now)
    return True
