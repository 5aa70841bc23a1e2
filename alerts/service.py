"""Scans and alert actions. One open alert per account and kind: a worsening account updates its
alert (and its Slack thread) instead of posting again; a resolved one rests for a cooldown; a snoozed
one stays quiet until its snooze ends. Every Slack message goes through the outbox, written in the
same transaction as the change it announces."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from accounts.health import DataThrough, Health, data_through, health_all
from accounts.reasons import describe
from alerts import budget
from alerts import rules as alert_rules
from alerts.rules import SEVERITY_RANK, Finding
from clock import Clock, local_day
from settings import Rules
from storage.directory import owners
from storage.models import Account, Alert, AlertEvent, HealthDay, UpsellOpportunity
from storage.outbox import enqueue


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class AlertError(Exception):
    code = "error"


class NotFound(AlertError):
    code = "not_found"


class AlreadyResolved(AlertError):
    code = "already_resolved"


class WrongKind(AlertError):
    code = "wrong_kind"


class NotAllowed(AlertError):
    code = "not_allowed"


@dataclass
class Raised:
    """What a scan did about one finding, for the CLI's JSON and text output."""

    finding: Finding
    account: str
    account_name: str
    change: str  # new | worsened
    alert_id: int | None
    data_through: date | None = None  # the day scored: the book's latest day with signals
    names: dict[str, dict[str, str]] | None = None  # metric display names for the reasons' text

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account,
            "name": self.account_name,
            "kind": self.finding.kind,
            "severity": self.finding.severity,
            "score": self.finding.score,
            "change": self.change,
            "alert_id": self.alert_id,
            "data_through": self.data_through.isoformat() if self.data_through else None,
            "reasons": [
                {**r, "text": describe(r["code"], r["params"], self.names)} for r in self.finding.reasons
            ],
        }


@dataclass
class ScanResult:
    as_of: date
    data: DataThrough | None = None  # how far the usage data went; the scan scored up to data.day
    accounts: int = 0
    raised: list[Raised] = field(default_factory=list)
    quiet: dict[str, int] = field(default_factory=dict)  # why findings did not message: unchanged, snoozed...
    decided_by: dict[str, str] = field(default_factory=dict)  # per kind: "model" (budgeted) or "rules"
    decided_why: dict[str, str] = field(default_factory=dict)  # per kind: budget.Decision.why


def _event(
    session: Session, alert: Alert, kind: str, actor: str, at: datetime, summary: str, **details: Any
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id, kind=kind, actor=actor, summary=summary, details=details, occurred_at=at
        )
    )


def _worse(alert: Alert, finding: Finding) -> bool:
    old = {r["code"] for r in alert.reasons}
    return SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alert.severity] or bool(finding.codes - old)


def _keep_bands(session: Session, day: date, bands: dict[str, int], now: datetime) -> None:
    """The day's band counts, for the digest's 12-week trend (read instead of scoring again). The
    first scan of a day keeps them: a later `scan --as-of` of a past day scores with today's accounts
    (a churned one is gone) and must not rewrite what that day looked like. Insert-if-absent in one
    statement, so two scans of one day at once do not fail each other."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(HealthDay).values(day=day, **bands, computed_at=now)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["day"]))


def scan(
    session: Session,
    *,
    as_of: date,
    rules: Rules,
    clock: Clock,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """One scan using only data up to ``as_of``, scored on the book's data-through day (days the export has
    not delivered are not zero use). The caller commits (or, for a dry run, rolls back). ``progress`` hears
    the number of accounts scored so far, after each one (a terminal's bar; the scan draws nothing)."""
    now = clock()
    data = data_through(session, as_of, rules.health)
    result = ScanResult(as_of=as_of, data=data)
    as_of = data.day  # from here on: the day scored, stored on alerts and band counts
    unresolved, recently_resolved = _current_alerts(session, now, timedelta(days=rules.alerts.cooldown_days))
    bands, readings, by_rules = _read_book(session, as_of, rules, data, result, progress)
    findings = _budgeted(
        session, by_rules, readings, as_of, rules, now, unresolved, recently_resolved, result
    )
    new: list[tuple[Health, Finding, Alert]] = []
    for f in findings:
        h = readings[f.account_id]
        alert = unresolved.get((f.account_id, f.kind))
        if alert is not None:
            _update(session, alert, h, f, as_of, now, rules, result)
        elif (f.account_id, f.kind) in recently_resolved:
            _quiet(result, "cooldown")
        else:
            alert = _new_alert(f, as_of, now)
            session.add(alert)
            unresolved[(f.account_id, f.kind)] = alert
            new.append((h, f, alert))
    _keep_bands(session, as_of, bands, now)
    _announce_new(session, new, now, rules, result)
    session.flush()
    return result


def _quiet(result: ScanResult, reason: str, n: int = 1) -> None:
    result.quiet[reason] = result.quiet.get(reason, 0) + n


def _current_alerts(
    session: Session, now: datetime, cooldown: timedelta
) -> tuple[dict[tuple[int, str], Alert], set[tuple[int, str]]]:
    """The unresolved alerts by (account, kind), and the (account, kind) pairs resting after a resolve."""
    unresolved = {
        (a.account_id, a.kind): a for a in session.scalars(select(Alert).where(Alert.state != State.RESOLVED))
    }
    recently_resolved = {
        (a.account_id, a.kind)
        for a in session.scalars(
            select(Alert).where(Alert.state == State.RESOLVED, Alert.resolved_at > now - cooldown)
        )
    }
    return unresolved, recently_resolved


def _read_book(
    session: Session,
    as_of: date,
    rules: Rules,
    data: DataThrough,
    result: ScanResult,
    progress: Callable[[int], None] | None,
) -> tuple[dict[str, int], dict[int, Health], list[Finding]]:
    """Every account's health in one pass: the band counts, the readings by account and the rules'
    findings (the budget picks among them next)."""
    bands = {"green": 0, "yellow": 0, "red": 0, "unknown": 0}
    readings: dict[int, Health] = {}
    by_rules: list[Finding] = []
    for h in health_all(session, as_of, rules.health, data=data):
        result.accounts += 1
        bands[h.band] += 1
        readings[h.account_id] = h
        if progress:
            progress(result.accounts)
        for f in (
            alert_rules.churn(h, as_of, rules.alerts, rules.health),
            alert_rules.upsell(h, rules.alerts, rules.health),
        ):
            if f:
                by_rules.append(f)
    return bands, readings, by_rules


def _update(
    session: Session,
    alert: Alert,
    h: Health,
    f: Finding,
    as_of: date,
    now: datetime,
    rules: Rules,
    result: ScanResult,
) -> None:
    """A finding for an account and kind with an unresolved alert: a snooze that has ended reopens it, a
    worse finding updates it; otherwise it is left untouched, so a click on its card meanwhile does not
    conflict."""
    if alert.state == State.SNOOZED:
        if alert.snoozed_until and alert.snoozed_until > now:
            _quiet(result, "snoozed")
            return
        alert.state, alert.snoozed_until, alert.snoozed_by = State.OPEN, None, None
        _event(session, alert, "snooze_ended", "baton", now, "Snooze ended; still applies")
        _refresh(session, alert, f, as_of, now)
        enqueue(session, alert, "update", now)
        enqueue(session, alert, "thread", now, note="snooze_ended", reasons=f.reasons)
        result.raised.append(_raised(h, f, "worsened", alert, rules))
        return
    if not _worse(alert, f):
        _quiet(result, "unchanged")
        return
    new_codes = sorted(f.codes - {r["code"] for r in alert.reasons})
    _refresh(session, alert, f, as_of, now)
    _event(
        session,
        alert,
        "worsened",
        "baton",
        now,
        f"Worsened: {', '.join(new_codes) or f.severity}",
        reasons=f.reasons,
    )
    enqueue(session, alert, "update", now)
    enqueue(session, alert, "thread", now, note="worsened", reasons=f.reasons)
    result.raised.append(_raised(h, f, "worsened", alert, rules))


def _new_alert(f: Finding, as_of: date, now: datetime) -> Alert:
    return Alert(
        account_id=f.account_id,
        kind=f.kind,
        state=State.OPEN,
        severity=f.severity,
        score=f.score,
        reasons=f.reasons,
        as_of=as_of,
        raised_at=now,
        updated_at=now,
    )


def _announce_new(
    session: Session,
    new: list[tuple[Health, Finding, Alert]],
    now: datetime,
    rules: Rules,
    result: ScanResult,
) -> None:
    """Owners for the new alerts, then their events and outbox posts. A new alert's owner is the
    account's: its handoff's CSM, else the CSM its csm_email maps to."""
    with session.no_autoflush:  # keep the one batched INSERT below
        owner_of = owners(session, (alert.account_id for _, _, alert in new))
    for _, _, alert in new:
        alert.owner_user_id = owner_of.get(alert.account_id)
    session.flush()  # one batched INSERT for every new alert, then their events and outbox rows
    for h, f, alert in new:
        _event(session, alert, "raised", "baton", now, f"{f.kind} raised ({f.severity})", reasons=f.reasons)
        enqueue(session, alert, "post", now)
        result.raised.append(_raised(h, f, "new", alert, rules))


def _budgeted(
    session: Session,
    by_rules: list[Finding],
    readings: dict[int, Health],
    day: date,
    rules: Rules,
    now: datetime,
    unresolved: dict[tuple[int, str], Alert],
    recently_resolved: set[tuple[int, str]],
    result: ScanResult,
) -> list[Finding]:
    """The rules' findings as they are for a kind with no model; for a kind with one, the budget's
    (alerts/budget.py). Accounts the model scores but the health reading does not know are left out."""
    decided = budget.decisions(session, rules, now)
    scored = budget.score_accounts(session, day, rules, decided) if readings else {}
    out: list[Finding] = []
    for kind in (alert_rules.CHURN, alert_rules.UPSELL):
        mine = [f for f in by_rules if f.kind == kind]
        snoozed = {a for (a, k), al in unresolved.items() if k == kind and al.state == State.SNOOZED}
        slots = {
            "left": budget.room(session, now, kind, len(readings), rules),
            "blocked": {a for a, k in recently_resolved if k == kind} | snoozed,
            "open_ids": {a for a, k in unresolved if k == kind},
        }
        rest = budget.rested(session, now, kind)
        mine, resting = budget.rest_hard(mine, rest, slots["open_ids"])
        if resting:
            _quiet(result, "resting", resting)
        result.decided_why[kind] = decided[kind].why
        if kind not in scored:
            result.decided_by[kind] = "rules"
            d = decided[kind]
            if d.why == "cold_start":  # the card says why the rules decide, and until when
                note = {"code": "rules_decide", "params": d.params}
                mine = [replace(f, reasons=[*f.reasons, note]) for f in mine]
            chosen, cut = budget.select_by_rules(mine, kind, rest=rest, **slots)
        else:
            result.decided_by[kind] = "model"
            chosen, cut = budget.select_findings(
                mine,
                {a: s for a, s in scored[kind].items() if a in readings},
                kind,
                rest=rest,
                **slots,
            )
            chosen = [replace(f, score=readings[f.account_id].score) for f in chosen]
        if cut:
            _quiet(result, "over_budget", cut)
        out += chosen
    return out


def _refresh(session: Session, alert: Alert, f: Finding, as_of: date, now: datetime) -> None:
    alert.severity, alert.score, alert.reasons, alert.as_of, alert.updated_at = (
        f.severity,
        f.score,
        f.reasons,
        as_of,
        now,
    )


def _raised(h: Health, f: Finding, change: str, alert: Alert, rules: Rules) -> Raised:
    account = h.external_id or str(h.account_id)
    return Raised(f, account, h.name, change, alert.id, h.scored_on, rules.health.metric_names)


# --- actions people take from Slack (or anywhere) ---------------------------------------------------


def _load(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound()
    return alert


def ensure_may_act(session: Session, *, alert_id: int, user_id: str, is_cs: bool) -> None:
    """Customer success acts on any alert; anyone else only on alerts for an account they are the CSM
    of, or that they were made the owner of. Raises NotAllowed otherwise, before anything changes."""
    if is_cs:
        return
    alert = _load(session, alert_id)
    account = session.get(Account, alert.account_id)
    if user_id not in {alert.owner_user_id, account.csm_user_id if account else None} - {None}:
        raise NotAllowed()


# Each action is a no-op when the alert is already where it would put it: a double click, a retry or
# a replayed request changes nothing, writes no event and queues no message.


def acknowledge(session: Session, *, alert_id: int, actor: str, clock: Clock) -> Alert:
    alert = _load(session, alert_id)
    if alert.state == State.RESOLVED:
        raise AlreadyResolved()
    if alert.state == State.ACKNOWLEDGED:
        return alert
    now = clock()
    alert.state, alert.acknowledged_by, alert.acknowledged_at, alert.updated_at = (
        State.ACKNOWLEDGED,
        actor,
        now,
        now,
    )
    alert.snoozed_until = alert.snoozed_by = None
    _event(session, alert, "acknowledged", actor, now, f"Acknowledged by {actor}")
    enqueue(session, alert, "update", now)
    return alert


def assign_owner(session: Session, *, alert_id: int, owner: str, actor: str, clock: Clock) -> Alert:
    alert = _load(session, alert_id)
    if alert.state == State.RESOLVED:
        raise AlreadyResolved()
    if alert.owner_user_id == owner:
        return alert
    now = clock()
    alert.owner_user_id, alert.updated_at = owner, now
    if alert.state == State.OPEN:
        alert.state, alert.acknowledged_by, alert.acknowledged_at = State.ACKNOWLEDGED, actor, now
    _event(session, alert, "assigned", actor, now, f"Owner {owner}", owner=owner)
    enqueue(session, alert, "update", now)
    enqueue(session, alert, "thread", now, note="assigned", owner=owner, actor=actor)
    return alert


def snooze(
    session: Session, *, alert_id: int, actor: str, clock: Clock, days: int, timezone: str = "UTC"
) -> Alert:
    """Quiet until ``days`` from now; the card says who snoozed it and until when, and its thread says
    so too (as an owner change does). ``timezone`` names the team's day the snooze ends on."""
    alert = _load(session, alert_id)
    if alert.state == State.RESOLVED:
        raise AlreadyResolved()
    now = clock()
    if alert.state == State.SNOOZED and alert.snoozed_until and alert.snoozed_until > now:
        return alert  # already snoozed: a second click does not move the end or note it again
    until = now + timedelta(days=days)
    alert.state, alert.snoozed_until, alert.snoozed_by, alert.updated_at = State.SNOOZED, until, actor, now
    _event(session, alert, "snoozed", actor, now, f"Snoozed {days} days", until=until.isoformat())
    enqueue(session, alert, "update", now)
    day = local_day(until, timezone).isoformat()
    enqueue(session, alert, "thread", now, note="snoozed", actor=actor, until=until.isoformat(), day=day)
    return alert


def resolve(session: Session, *, alert_id: int, actor: str, clock: Clock) -> Alert:
    alert = _load(session, alert_id)
    if alert.state == State.RESOLVED:
        raise AlreadyResolved()
    now = clock()
    alert.state, alert.resolved_by, alert.resolved_at, alert.updated_at = State.RESOLVED, actor, now, now
    alert.snoozed_until = alert.snoozed_by = None
    _event(session, alert, "resolved", actor, now, f"Resolved by {actor}")
    enqueue(session, alert, "update", now)
    return alert


def hand_to_inside_sales(session: Session, *, alert_id: int, actor: str, clock: Clock) -> UpsellOpportunity:
    """CS passes an upsell chance to IS: recorded as an opportunity (the shared KPI) and posted for IS."""
    alert = _load(session, alert_id)
    if alert.kind != alert_rules.UPSELL:
        raise WrongKind()
    if alert.handed_to_is_at is not None:
        existing = session.scalars(
            select(UpsellOpportunity).where(UpsellOpportunity.alert_id == alert.id)
        ).first()
        if existing is not None:
            return existing
    now = clock()
    opp = UpsellOpportunity(
        account_id=alert.account_id, alert_id=alert.id, handed_by=actor, reasons=alert.reasons, created_at=now
    )
    session.add(opp)
    alert.handed_to_is_at, alert.updated_at = now, now
    if alert.state == State.OPEN:
        alert.state, alert.acknowledged_by, alert.acknowledged_at = State.ACKNOWLEDGED, actor, now
    _event(session, alert, "handed_to_is", actor, now, "Handed to inside sales")
    enqueue(session, alert, "update", now)
    enqueue(session, alert, "handoff_is", now, actor=actor)
    return opp


def get(session: Session, alert_id: int) -> Alert:
    alert = _load(session, alert_id)
    session.refresh(alert)
    return alert


def account_of(session: Session, alert: Alert) -> Account:
    return session.get(Account, alert.account_id)  # type: ignore[return-value]


def events(session: Session, alert_id: int) -> Sequence[AlertEvent]:
    return session.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    ).all()
