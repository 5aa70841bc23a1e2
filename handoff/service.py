"""Handoff use cases. Each takes a session and commits nothing: the caller's unit of work does, so the
change and its audit event land in one transaction or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accounts.lookup import find_account, similar_account_names
from accounts.names import clean_name, normalize_name
from accounts.tiers import suggest_tier
from clock import Clock
from handoff.checklist import FieldError, HandoffForm, parse_external_stakeholders, validate
from handoff.crm_link import queue_writeback
from settings import Rules
from storage import outbox
from storage.models import Account, Handoff, HandoffEvent, Outbox, Stakeholder


class Status(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"


class EventKind(StrEnum):
    CREATED = "created"
    EDITED = "edited"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    QUESTION_ASKED = "question_asked"
    POSTED = "posted"
    TOUCH_LOGGED = "touch_logged"
    TIER_CHANGED = "tier_changed"


@dataclass(frozen=True)
class Actor:
    """Who acts; ``is_cs`` is resolved by the caller (a Slack user group, a config list, a test)."""

    user_id: str
    is_cs: bool = False


class HandoffError(Exception):
    """A refusal a person can read; ``code`` is a message key for the UI."""

    code = "error"

    def __init__(self, **params: object) -> None:
        super().__init__(self.code, params)
        self.params = params


class NotFound(HandoffError):
    code = "not_found"


class NotAllowed(HandoffError):
    code = "not_allowed"


class Conflict(HandoffError):
    code = "edited_meanwhile"


class Invalid(HandoffError):
    code = "invalid"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__()
        self.errors = errors


CHECKLIST_FIELDS = (  # the form's answers, in the modal's order
    "why_bought",
    "problem",
    "success_criteria",
    "plan",
    "seats",
    "price_amount",
    "currency",
    "billing_period",
    "contract_start",
    "renewal_date",
    "addons",
    "decision_process",
    "decision_maker",
    "competitors",
    "why_won",
    "discussion",
    "meetings",
    "concerns",
    "open_questions",
    "handed_off_by",
)


def _load(session: Session, handoff_id: int) -> Handoff:
    h = session.scalars(
        select(Handoff)
        .where(Handoff.id == handoff_id)
        .options(selectinload(Handoff.stakeholders), selectinload(Handoff.account))
    ).one_or_none()
    if h is None:
        raise NotFound(handoff_id=handoff_id)
    return h


get = _load


def add_event(
    session: Session,
    h: Handoff,
    kind: EventKind,
    actor: str,
    at: datetime,
    summary: str,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The audit trail: the caller adds it in the same transaction as the change it records."""
    session.add(
        HandoffEvent(
            handoff=h,
            kind=kind,
            actor_user_id=actor,
            subject_user_id=subject,
            summary=summary,
            details=details or {},
            occurred_at=at,
        )
    )


def open_handoff_account(session: Session, name: str) -> str | None:
    """The stored name of the account if it has an open handoff; one indexed query, since
    `/handoff Name` asks it inside Slack's 3-second window."""
    return session.scalar(
        select(Account.name)
        .join(Handoff, Handoff.account_id == Account.id)
        .where(Account.name_key == normalize_name(name), Handoff.status == Status.OPEN)
        .limit(1)
    )


def latest_for_account(session: Session, name: str) -> Handoff:
    account = find_account(session, name)
    if account is None:
        raise NotFound(account=name, suggestions=similar_account_names(session, name))
    h = session.scalars(
        select(Handoff).where(Handoff.account_id == account.id).order_by(Handoff.id.desc()).limit(1)
    ).one_or_none()
    if h is None:
        raise NotFound(account=name, suggestions=[])
    return _load(session, h.id)


def _open_handoff_for(session: Session, account: Account) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(Handoff.account_id == account.id, Handoff.status == Status.OPEN).limit(1)
    ).one_or_none()


def _apply(h: Handoff, form: HandoffForm, rules: Rules) -> None:
    for name in CHECKLIST_FIELDS:
        value = getattr(form, name)
        setattr(h, name, value.strip() if isinstance(value, str) else value)
    assert form.price_amount is not None and form.currency and form.billing_period  # validated
    h.touch_tier_suggested = suggest_tier(
        form.price_amount, form.currency, form.billing_period, rules.touch_tiers
    )
    h.touch_tier = form.touch_tier or h.touch_tier_suggested
    externals, _ = parse_external_stakeholders(form.stakeholders_external)
    people = [Stakeholder(slack_user_id=u) for u in dict.fromkeys(form.stakeholder_users)]
    people += [Stakeholder(name=p.name, role=p.role, email=p.email) for p in externals]
    for i, p in enumerate(people):
        p.position = i
    h.stakeholders = people


def _sync_account(account: Account, h: Handoff, now: datetime) -> None:
    """The account mirrors its latest handoff's contract, so later features read one place."""
    account.plan, account.seats, account.currency = h.plan, h.seats, h.currency
    account.mrr = (
        h.price_amount if h.billing_period == "monthly" else (h.price_amount / 12).quantize(Decimal("0.01"))
    )
    account.contract_start, account.renewal_date = h.contract_start, h.renewal_date
    account.touch_tier = h.touch_tier
    if h.csm_user_id:
        account.csm_user_id = h.csm_user_id
    account.updated_at = now


def create(
    session: Session,
    *,
    form: HandoffForm,
    actor: Actor,
    clock: Clock,
    rules: Rules,
    input_errors: Sequence[FieldError] = (),
) -> Handoff:
    """Validate and store a new handoff (creating its account on first sight). Raises ``Invalid``.

    ``input_errors`` are problems the UI found while reading the form, reported with the rest."""
    errors = validate(form, list(input_errors))
    now = clock()
    account = find_account(session, form.account_name) if form.account_name else None
    if account is not None and not errors and _open_handoff_for(session, account) is not None:
        errors.append(FieldError("account_name", "already_open", {"account": account.name}))
    if errors:
        raise Invalid(errors)
    assert form.account_name is not None
    if account is None:
        name = clean_name(form.account_name)
        account = Account(name=name, name_key=normalize_name(name), created_at=now, updated_at=now)
        session.add(account)
    h = Handoff(
        account=account,
        status=Status.OPEN,
        revision=1,
        submitted_by=actor.user_id,
        csm_user_id=form.csm_user_id,
        created_at=now,
        updated_at=now,
    )
    _apply(h, form, rules)
    session.add(h)
    _sync_account(account, h, now)
    name = account.name
    add_event(session, h, EventKind.CREATED, actor.user_id, now, f"Handoff for {name} created")
    if form.csm_user_id:
        h.assigned_by, h.assigned_at = actor.user_id, now
        add_event(
            session,
            h,
            EventKind.ASSIGNED,
            actor.user_id,
            now,
            f"CSM {form.csm_user_id} assigned",
            subject=form.csm_user_id,
        )
    try:
        session.flush()
    except IntegrityError as exc:
        # Someone submitted the same account a moment ago: the unique indexes caught what the check
        # above could not see yet. The caller's unit of work rolls back; nothing half-written stays.
        raise Invalid([FieldError("account_name", "already_open", {"account": name})]) from exc
    return h


def can_edit(h: Handoff, actor: Actor) -> bool:
    return actor.user_id in (h.submitted_by, h.handed_off_by)


def _comparable(h: Handoff) -> dict[str, object]:
    snap: dict[str, object] = {n: getattr(h, n) for n in CHECKLIST_FIELDS}
    snap["touch_tier"] = h.touch_tier
    snap["csm_user_id"] = h.csm_user_id
    snap["stakeholders"] = [(p.slack_user_id, p.name, p.role, p.email) for p in h.stakeholders]
    snap["account_name"] = h.account.name
    return snap


def update(
    session: Session,
    *,
    handoff_id: int,
    expected_revision: int,
    form: HandoffForm,
    actor: Actor,
    clock: Clock,
    rules: Rules,
    input_errors: Sequence[FieldError] = (),
) -> tuple[Handoff, list[str]]:
    """Apply an edit; returns the handoff and the names of the fields that changed.

    ``expected_revision`` is the checklist revision the editor saw: if someone saved the checklist in
    between, ``Conflict``. Accepting or assigning meanwhile is no conflict: they touch other fields.
    The check always runs: a missing or malformed revision is ``Conflict`` too, never "no check".
    """
    h = _load(session, handoff_id)
    _check_edit(
        session, h, expected_revision=expected_revision, form=form, actor=actor, input_errors=input_errors
    )
    before = _comparable(h)
    now = clock()
    _apply(h, form, rules)
    if form.csm_user_id != before["csm_user_id"]:
        _set_csm(session, h, form.csm_user_id, actor, now)
    name = clean_name(form.account_name or "")
    if name != h.account.name:
        h.account.name, h.account.name_key = name, normalize_name(name)
    changed = [k for k, v in _comparable(h).items() if before[k] != v]
    if not changed:
        return h, []
    h.updated_at = now
    h.revision += 1
    _sync_account(h.account, h, now)
    add_event(
        session,
        h,
        EventKind.EDITED,
        actor.user_id,
        now,
        f"Edited: {', '.join(changed)}",
        details={"changed": changed},
    )
    session.flush()
    return h, changed


def _check_edit(
    session: Session,
    h: Handoff,
    *,
    expected_revision: int,
    form: HandoffForm,
    actor: Actor,
    input_errors: Sequence[FieldError],
) -> None:
    """Everything that refuses an edit before it touches the handoff: who may edit, the revision the
    editor saw (``Conflict``), then the form's errors all at once (``Invalid``)."""
    if not can_edit(h, actor):
        raise NotAllowed(action="edit")
    if type(expected_revision) is not int or h.revision != expected_revision:
        raise Conflict()
    errors = validate(form, list(input_errors))
    if form.csm_user_id != h.csm_user_id and not actor.is_cs:
        # Once handed off, who the CSM is is customer success's call (the card's Assign CSM).
        errors.append(FieldError("csm_user_id", "csm_cs_only"))
    assert form.account_name is not None or errors
    if not errors and normalize_name(form.account_name or "") != h.account.name_key:
        other = find_account(session, form.account_name or "")
        if other is not None:
            errors.append(FieldError("account_name", "name_taken", {"account": other.name}))
    if errors:
        raise Invalid(errors)


def _set_csm(session: Session, h: Handoff, csm: str | None, actor: Actor, now: datetime) -> None:
    """The CSM changed in the form: recorded as an assignment (by whom, when), cleared with it."""
    h.csm_user_id = csm
    h.assigned_by, h.assigned_at = (actor.user_id, now) if csm else (None, None)
    add_event(session, h, EventKind.ASSIGNED, actor.user_id, now, f"CSM set to {csm}", subject=csm)


def accept(session: Session, *, handoff_id: int, actor: Actor, clock: Clock) -> tuple[Handoff, bool]:
    """CS takes the handoff. Returns (handoff, changed); accepting twice changes nothing."""
    if not actor.is_cs:
        raise NotAllowed(action="accept")
    h = _load(session, handoff_id)
    if h.status == Status.ACCEPTED:
        return h, False
    now = clock()
    h.status, h.accepted_by, h.accepted_at, h.updated_at = Status.ACCEPTED, actor.user_id, now, now
    add_event(session, h, EventKind.ACCEPTED, actor.user_id, now, f"Accepted by {actor.user_id}")
    session.flush()
    return h, True


def assign(
    session: Session, *, handoff_id: int, csm_user_id: str, actor: Actor, clock: Clock
) -> tuple[Handoff, bool, bool]:
    """CS assigns the CSM; assigning also accepts an open handoff.

    Returns (handoff, changed, accepted_now): a reassignment says so differently from a first take."""
    if not actor.is_cs:
        raise NotAllowed(action="assign")
    h = _load(session, handoff_id)
    if h.csm_user_id == csm_user_id:
        return h, False, False
    now = clock()
    accepted_now = h.status == Status.OPEN
    h.csm_user_id, h.assigned_by, h.assigned_at, h.updated_at = csm_user_id, actor.user_id, now, now
    h.account.csm_user_id = csm_user_id
    if h.status == Status.OPEN:
        h.status, h.accepted_by, h.accepted_at = Status.ACCEPTED, actor.user_id, now
        add_event(session, h, EventKind.ACCEPTED, actor.user_id, now, f"Accepted by {actor.user_id}")
    add_event(
        session, h, EventKind.ASSIGNED, actor.user_id, now, f"CSM {csm_user_id} assigned", subject=csm_user_id
    )
    session.flush()
    return h, True, accepted_now


def record_question(session: Session, *, handoff_id: int, actor: Actor, text: str, clock: Clock) -> Handoff:
    text = text.strip()
    if not text:
        raise Invalid([FieldError("question", "required")])
    h = _load(session, handoff_id)
    add_event(
        session,
        h,
        EventKind.QUESTION_ASKED,
        actor.user_id,
        clock(),
        text[:200],
        subject=h.submitted_by,
        details={"text": text},
    )
    return h


def record_post(
    session: Session, *, handoff_id: int, channel_id: str, ts: str, permalink: str | None
) -> None:
    """Remember where the card lives, so later changes update that same message."""
    h = _load(session, handoff_id)
    h.channel_id, h.message_ts, h.permalink = channel_id, ts, permalink


# --- messages: queued in the outbox in the change's own transaction; bot/delivery.py renders and sends
# them from the handoff as it is at send time, so a late card still shows the latest state.
def queue_card(session: Session, h: Handoff, channel: str | None, at: datetime) -> Outbox | None:
    """The card, unless it is posted or already queued. None when there is no channel to post it in."""
    if not channel or h.message_ts or outbox.first_post_pending(session, handoff_id=h.id):
        return None
    row = outbox.enqueue(session, None, "card", at, handoff_id=h.id, channel=channel)
    queue_writeback(session, h, at)  # a handoff from a CRM deal goes back to the CRM (after the card)
    return row


def queue_change(session: Session, h: Handoff, at: datetime, note: str | None = None) -> None:
    """A change shown on the card (updated in place) and noted in its thread. A card still queued
    needs no update: it is rendered when it is sent."""
    if h.message_ts:
        outbox.enqueue(session, None, "card_update", at, handoff_id=h.id)
    if note:
        outbox.enqueue(session, None, "card_note", at, handoff_id=h.id, text=note)
    queue_writeback(session, h, at)  # the CRM's note, CSM and kickoff task follow the change


def queue_question(session: Session, h: Handoff, text: str, at: datetime) -> Outbox:
    """A question in the card's thread; a DM to the submitter when the card never made it."""
    return outbox.enqueue(session, None, "question", at, handoff_id=h.id, text=text)


def queue_assigned_dm(session: Session, h: Handoff, csm: str, assigner: str, at: datetime) -> None:
    outbox.enqueue(session, None, "dm_assigned", at, handoff_id=h.id, csm=csm, assigner=assigner)


def queue_nudge(session: Session, h: Handoff, at: datetime) -> None:
    """The submitter's list of empty checklist items; nothing is sent when none are left by then."""
    outbox.enqueue(session, None, "nudge", at, handoff_id=h.id)


def card_state(session: Session, handoff_id: int) -> tuple[str, str | None] | None:
    """The state of the card's latest outbox row and its last error; None when none was queued."""
    row = session.execute(
        select(Outbox.state, Outbox.last_error)
        .where(Outbox.handoff_id == handoff_id, Outbox.action == outbox.FIRST_POST["handoff"])
        .order_by(Outbox.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def open_for(session: Session, user_id: str, limit: int = 20) -> tuple[Sequence[Handoff], int]:
    """What `/handoff list` shows a user: every unaccepted handoff, then the ones they submitted or own
    as CSM; with the total, so the answer can say when it shows only the latest."""
    mine = or_(Handoff.status == Status.OPEN, Handoff.submitted_by == user_id, Handoff.csm_user_id == user_id)
    total = session.scalar(select(func.count()).select_from(Handoff).where(mine)) or 0
    stmt = (
        select(Handoff)
        .where(mine)
        .options(selectinload(Handoff.account), selectinload(Handoff.stakeholders))
        .order_by(Handoff.status.desc(), Handoff.created_at.desc(), Handoff.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all(), total


def events(session: Session, handoff_id: int) -> Sequence[HandoffEvent]:
    return session.scalars(
        select(HandoffEvent).where(HandoffEvent.handoff_id == handoff_id).order_by(HandoffEvent.id)
    ).all()


def form_from(h: Handoff) -> HandoffForm:
    """The form that reproduces a stored handoff, to prefill the edit modal."""
    externals = [p for p in h.stakeholders if p.slack_user_id is None]
    lines = [" | ".join(x for x in (p.name, p.role, p.email) if x) for p in externals]
    values: dict[str, Any] = {n: getattr(h, n) for n in CHECKLIST_FIELDS}
    return HandoffForm(
        account_name=h.account.name,
        stakeholder_users=[p.slack_user_id for p in h.stakeholders if p.slack_user_id],
        stakeholders_external="\n".join(lines) or None,
        csm_user_id=h.csm_user_id,
        touch_tier=h.touch_tier if h.touch_tier != h.touch_tier_suggested else None,
        **values,
    )
