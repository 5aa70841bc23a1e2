"""Cadence reminders: what each CSM should hear about today, every stage of it once.

Computed from the data as it stands on the team's local day ``today``:

- onboarding milestones from the tier's plan: announced ``remind_before_days`` before they are due,
  chased once ``overdue_after_days`` after, until a touch of their kind is logged;
- QBRs for ``qbr_tiers`` once onboarding is over, every ``qbr_every_days`` since the last QBR logged
  (or since the handoff / contract start), announced ``qbr_remind_before_days`` ahead;
- renewals of every active account, ``renewal_days`` (90/60/30) out.

A stage more than ``catch_up_days`` old is not sent (Baton was down, or the data is old), except
renewals, which stay worth knowing until the day. When several stages of one item are reached at once
only the latest is sent and the earlier ones are recorded, so they never trail behind it. The ledger
rows (``reminders_sent``) and the outbox rows that carry the messages are written in the caller's
transaction: one message per recipient per day, and each stage exactly once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.tiers import tier_of
from clock import local_day
from handoff.cadence import Kind, latest_handoff, plan
from settings import CadenceRules, Rules
from storage.directory import mapped_users, owner
from storage.models import Account, Handoff, ReminderSent, Touch
from storage.outbox import enqueue

CHUNK = 500
PER_MESSAGE = 40  # reminders per Slack message: a recipient with more gets several messages, none cut


class Stage(StrEnum):
    DUE = "due"
    OVERDUE = "overdue"
    QBR = "qbr"
    QBR_OVERDUE = "qbr_overdue"
    RENEWAL = "renewal"


@dataclass(frozen=True)
class Reminder:
    account_id: int
    account: str
    recipient: str | None  # the owner's Slack user id (storage.directory.owner); None: nobody yet
    stage: Stage
    touch: str  # the touch that answers it (a renewal: a check-in)
    due: str  # ISO date: when the touch is due, or the renewal date
    key: str  # the ledger key of the stage sent
    settles: tuple[str, ...]  # every ledger key this send covers (itself and earlier stages)
    tier: str
    days_left: int | None = None  # renewals only
    external_id: str | None = None  # the account's id in the company's own data (accounts file)

    def payload(self) -> dict[str, Any]:
        """What the outbox message carries: the internal id, for the Log touch button."""
        d = asdict(self)
        del d["settles"], d["key"], d["external_id"]
        return d

    def as_json(self) -> dict[str, Any]:
        """For `remind --json`: accounts named by their external id, as `scan --json` and `health --json`."""
        d = self.payload()
        d["account_id"] = self.external_id or str(self.account_id)
        d["name"] = d.pop("account")
        return d


def _latest(
    stages: list[tuple[str, date]], today: date, catch_up: int | None
) -> tuple[str, tuple[str, ...]] | None:
    """Of an item's stages (ledger key, first day), in order: the latest reached and all reached."""
    reached = [(k, d) for k, d in stages if d <= today]
    if not reached:
        return None
    key, day = reached[-1]
    if catch_up is not None and (today - day).days > catch_up:
        return None
    return key, tuple(k for k, _ in reached)


def _due_or_overdue(
    base: str, due_on: date, before_days: int, today: date, c: CadenceRules
) -> tuple[bool, tuple[str, tuple[str, ...]]] | None:
    """A touch's two stages, announced ``before_days`` ahead and chased once overdue: (overdue?, the
    stage picked by ``_latest``), or None when neither is reached (or both are too old)."""
    stages = [
        (f"{base}:due", due_on - timedelta(days=before_days)),
        (f"{base}:overdue", due_on + timedelta(days=c.overdue_after_days)),
    ]
    picked = _latest(stages, today, c.catch_up_days)
    return None if picked is None else (picked[0].endswith(":overdue"), picked)


def due(session: Session, today: date, rules: Rules) -> list[Reminder]:
    """Every reminder whose stage is reached on ``today``, whether or not it was sent before."""
    c = rules.cadence
    latest_ids = select(func.max(Handoff.id)).group_by(Handoff.account_id)
    handoffs = {h.account_id: h for h in session.scalars(select(Handoff).where(Handoff.id.in_(latest_ids)))}
    touches: dict[int, list[tuple[str, date]]] = defaultdict(list)
    for aid, kind, at in session.execute(select(Touch.account_id, Touch.kind, Touch.occurred_at)):
        touches[aid].append((kind, local_day(at, c.timezone)))
    mapped = mapped_users(session)  # csm_email -> Slack user, as bot/directory.py last looked them up
    out: list[Reminder] = []
    for a in session.scalars(select(Account).where(Account.status == "active").order_by(Account.name)):
        h = handoffs.get(a.id)
        tier = tier_of(a, h, rules.touch_tiers)
        recipient = owner(a, h, mapped)
        start = local_day(h.created_at, c.timezone) if h else a.contract_start

        found: list[tuple[Stage, str, date, tuple[str, tuple[str, ...]], int | None]] = []
        if h is not None:  # onboarding, from the handoff
            for i, m in enumerate(plan(tier, start, touches[a.id], c)):
                base = f"onboarding:{h.id}:{i}:{m.kind}:{m.due}"  # a changed plan is a new reminder
                if m.done_on is None and (
                    hit := _due_or_overdue(base, m.due, c.remind_before_days, today, c)
                ):
                    found.append((Stage.OVERDUE if hit[0] else Stage.DUE, m.kind, m.due, hit[1], None))
        if tier in c.qbr_tiers and start is not None:  # the first falls after onboarding (qbr_every_days)
            qbr_due = next_qbr(start, touches[a.id], today, rules)
            if hit := _due_or_overdue(f"qbr:{qbr_due}", qbr_due, c.qbr_remind_before_days, today, c):
                found.append((Stage.QBR_OVERDUE if hit[0] else Stage.QBR, Kind.QBR, qbr_due, hit[1], None))
        if a.renewal_date is not None and a.renewal_date >= today:
            stages = [
                (f"renewal:{a.renewal_date}:{n}", a.renewal_date - timedelta(days=n))
                for n in sorted(set(c.renewal_days), reverse=True)
            ]
            if picked := _latest(stages, today, None):
                days_left = (a.renewal_date - today).days
                found.append((Stage.RENEWAL, Kind.CHECK_IN, a.renewal_date, picked, days_left))
        for stage, touch, due_on, (key, settles), days_left in found:
            out.append(
                Reminder(
                    a.id,
                    a.name,
                    recipient,
                    stage,
                    touch,
                    due_on.isoformat(),
                    key,
                    settles,
                    tier,
                    days_left,
                    a.external_id,
                )
            )
    return out


def next_qbr(start: date, touches: list[tuple[str, date]], today: date, rules: Rules) -> date:
    """``qbr_every_days`` after the last QBR logged (or the start). A missed quarter shows as overdue
    while it is chased, then rolls on to the next: the rhythm goes on even when nobody logged one."""
    c = rules.cadence
    every = timedelta(days=c.qbr_every_days)
    due_on = max([start, *(d for k, d in touches if k == Kind.QBR)]) + every
    while due_on + timedelta(days=c.overdue_after_days + c.catch_up_days) < today:
        due_on += every
    return due_on


def next_touch(
    session: Session, account: Account, today: date, rules: Rules, h: Handoff | None = None
) -> tuple[str, date] | None:
    """What the account's CSM should do next: the first onboarding milestone not logged while
    onboarding lasts, then the next QBR for the tiers that hold them."""
    c = rules.cadence
    h = h or latest_handoff(session, account.id)
    rows = session.execute(select(Touch.kind, Touch.occurred_at).where(Touch.account_id == account.id))
    touches = [(k, local_day(at, c.timezone)) for k, at in rows]
    start = local_day(h.created_at, c.timezone) if h else account.contract_start
    if start is None:
        return None
    tier = tier_of(account, h, rules.touch_tiers)
    if h is not None and (today - start).days <= c.onboarding_days + c.catch_up_days:
        pending = next((m for m in plan(tier, start, touches, c) if m.done_on is None), None)
        if pending is not None:
            return pending.kind, pending.due
    if tier in c.qbr_tiers and today >= start + timedelta(days=c.onboarding_days):
        return Kind.QBR, next_qbr(start, touches, today, rules)
    return None


@dataclass
class Queued:
    reminders: int = 0
    messages: int = 0
    unowned: int = 0  # reminders for accounts without a CSM (posted in the handoff channel)
    items: list[Reminder] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.reminders} reminders in {self.messages} messages"
            f" ({self.unowned} for accounts without a CSM)"
        )


def queue(session: Session, today: date, rules: Rules, now: datetime) -> Queued:
    """Record and queue today's reminders not sent before: one outbox message per recipient."""
    reminders = due(session, today, rules)
    ids = sorted({r.account_id for r in reminders})
    sent: set[tuple[int, str]] = set()
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(ReminderSent.account_id, ReminderSent.key).where(
                ReminderSent.account_id.in_(ids[i : i + CHUNK])
            )
        )
        sent.update((aid, key) for aid, key in rows)
    by_recipient: dict[str | None, list[Reminder]] = defaultdict(list)
    for r in reminders:
        if (r.account_id, r.key) in sent:
            continue
        by_recipient[r.recipient].append(r)
        for key in r.settles:
            if (r.account_id, key) not in sent:
                sent.add((r.account_id, key))
                session.add(
                    ReminderSent(
                        account_id=r.account_id,
                        key=key,
                        recipient=r.recipient,
                        sent_for=today,
                        created_at=now,
                    )
                )
    result = Queued()
    for recipient, items in sorted(by_recipient.items(), key=lambda kv: kv[0] or ""):
        parts = -(-len(items) // PER_MESSAGE)
        for part, i in enumerate(range(0, len(items), PER_MESSAGE), 1):
            enqueue(
                session,
                None,
                "reminders",
                now,
                recipient=recipient,
                day=today.isoformat(),
                part=part,
                parts=parts,
                reminders=[r.payload() for r in items[i : i + PER_MESSAGE]],
            )
            result.messages += 1
        result.reminders += len(items)
        result.unowned += len(items) if recipient is None else 0
        result.items += items
    session.flush()
    return result
