"""The handoff back into the CRM, sent from the outbox (action ``crm_writeback``, queued by
``crm.link.queue_writeback`` with the change): a note with the checklist as text and a link to the Slack
card, the CSM in the company's owner / CSM property, and a task for the kickoff due date.

Never twice: the CRM id of each note and task is kept per handoff (``crm_writebacks``), so an edit
updates the same object. Before a create is sent its row is marked ``attempted_at`` and committed; a
retry that finds that mark without an id (the answer was lost: a timeout, a crash, a 500 after the CRM
wrote) looks the object up first, by the marker ``[baton-handoff-N]`` every note and task carries, on
the records it was attached to (HubSpot: the deal's associations, which are read back at once, unlike
the search index; Salesforce: SOQL on ParentId / WhatId). The clients never retry inside a call here
(their sleep raises): every retry goes back through the outbox and through that check.

HubSpot: one note associated with the deal and its company. Salesforce: a classic Note on the
Opportunity and one on the Account (a Note has one parent; see the README, "CRM", for why not ContentNote).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from clock import Clock
from crm.http import CrmAuthError, CrmError, CrmRefused, RateLimited
from crm.hubspot import HubSpot
from crm.salesforce import Salesforce
from handoff import cadence
from handoff import service as handoffs
from handoff.service import CHECKLIST_FIELDS
from settings import Settings
from storage import Database
from storage.models import CrmWriteback, Handoff, SlackUserEmail
from storage.outbox import first_post_pending

log = logging.getLogger(__name__)
CARD_WAIT = timedelta(minutes=10)  # how long a write-back waits for the card's link before going without
# HubSpot-defined association type ids (v4): note to deal / company, task to deal / company
NOTE_TO_DEAL, NOTE_TO_COMPANY, TASK_TO_DEAL, TASK_TO_COMPANY = 214, 190, 216, 192
_SF_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
# the checklist's answers as the note shows them (the currency is shown with the amount, the submitter
# in the note's heading)
_NOTE_FIELDS = tuple(f for f in CHECKLIST_FIELDS if f not in ("currency", "handed_off_by"))


class Later(Exception):
    """Try again after ``after`` (a rate limit, an outage, a token someone must renew)."""

    def __init__(self, after: timedelta, reason: str) -> None:
        super().__init__(reason)
        self.after, self.reason = after, reason


class Failed(Exception):
    """The CRM refused the write for a reason a retry will not change."""


class _Pause(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _no_sleep(seconds: float) -> None:
    raise _Pause(seconds)


class Words(Protocol):
    """The team's words (bot/i18n.py's Translator in BATON_LOCALE, passed in by the caller)."""

    def t(self, key: str, **params: Any) -> str: ...

    def money(self, amount: Any, currency: str | None) -> str: ...


class Env(Protocol):
    """What the sender needs from its caller (bot/delivery.py's Delivery has these)."""

    db: Database
    settings: Settings
    clock: Clock


@dataclass(frozen=True)
class Content:
    """What is written, rendered from the handoff as it is when the row is sent."""

    handoff_id: int
    account: str
    title: str
    lines: list[str]  # the note's text, line by line
    marker: str
    csm_email: str | None
    kickoff: date | None
    task_subject: str
    task_body: str

    def text(self) -> str:
        return "\n".join([*self.lines, "", self.marker])

    def html(self) -> str:
        paras = [html.escape(line).replace("\n", "<br>") for line in self.lines if line]
        return "".join(f"<p>{p}</p>" for p in [*paras, html.escape(self.marker)])


def marker(handoff_id: int) -> str:
    return f"[baton-handoff-{handoff_id}]"


def _value(tr: Words, h: Handoff, name: str) -> str | None:
    v = getattr(h, name)
    if v is None or v == "":
        return None
    if name == "price_amount":
        return tr.money(v, h.currency)
    if name == "billing_period":
        return tr.t(f"billing.{v}") if v in ("monthly", "annual") else str(v)
    if isinstance(v, date):
        return v.isoformat()
    return str(v).strip()


def content(env: Env, tr: Words, h: Handoff, csm_email: str | None) -> Content:
    milestones = cadence.milestones_for(_session_of(h), h, env.settings.rules.cadence)
    kickoff = next((m.due for m in milestones if m.kind == cadence.Kind.KICKOFF), None)
    head = [tr.t("cli.crm.note.title", account=h.account.name)]
    if h.permalink:
        head.append(tr.t("cli.crm.note.card", url=h.permalink))
    head.append(tr.t("cli.crm.note.status_" + ("accepted" if h.status == "accepted" else "open")))
    if csm_email:
        head.append(tr.t("cli.crm.note.csm", email=csm_email))
    if kickoff:
        head.append(tr.t("cli.crm.note.kickoff", day=kickoff.isoformat()))
    body = [
        tr.t("cli.crm.note.field", label=tr.t("field." + n), value=v)
        for n in _NOTE_FIELDS
        if (v := _value(tr, h, n)) is not None
    ]
    people = [" | ".join(x for x in (p.name, p.role, p.email) if x) for p in h.stakeholders if p.name]
    if people:
        label = tr.t("field.stakeholders_external")
        body.append(tr.t("cli.crm.note.field", label=label, value="\n" + "\n".join(people)))
    mark = marker(h.id)
    return Content(
        handoff_id=h.id,
        account=h.account.name,
        title=tr.t("cli.crm.note.title", account=h.account.name),
        lines=[*head, "", *body],
        marker=mark,
        csm_email=csm_email,
        kickoff=kickoff,
        task_subject=f"{tr.t('cli.crm.task.subject', account=h.account.name)} {mark}",
        task_body="\n".join([*head, "", mark]),
    )


def _session_of(h: Handoff) -> Any:
    from sqlalchemy.orm import object_session

    s = object_session(h)
    assert s is not None
    return s


def _csm_email(env: Env, h: Handoff, email_of: Callable[[str], str | None] | None) -> str | None:
    if not h.csm_user_id:
        return None
    s = _session_of(h)
    known = s.scalar(select(SlackUserEmail.email).where(SlackUserEmail.user_id == h.csm_user_id).limit(1))
    if known:
        return known
    if h.account.csm_user_id == h.csm_user_id and h.account.csm_email:
        return h.account.csm_email
    if email_of is not None:
        try:
            return email_of(h.csm_user_id)
        except Exception:  # a Slack lookup must not fail the CRM write: it goes without the CSM
            log.warning("could not read the CSM's email from Slack", exc_info=True)
    return None


# --- one object, never twice -----------------------------------------------------------------------
class Ledger:
    """The ``crm_writebacks`` rows of one handoff, each change in its own short transaction, so what
    Baton learned (an id, an attempt in flight) is stored before the next CRM call."""

    def __init__(self, db: Database, clock: Clock, handoff_id: int, crm: str) -> None:
        self.db, self.clock, self.handoff_id, self.crm = db, clock, handoff_id, crm

    def _row(self, s: Any, kind: str, target: str) -> CrmWriteback:
        row = s.scalar(
            select(CrmWriteback).where(
                CrmWriteback.handoff_id == self.handoff_id,
                CrmWriteback.crm == self.crm,
                CrmWriteback.kind == kind,
            )
        )
        if row is None:
            row = CrmWriteback(handoff_id=self.handoff_id, crm=self.crm, kind=kind, target_id=target)
            s.add(row)
        return row

    def get(self, kind: str, target: str) -> tuple[str | None, bool]:
        """(the stored object id, whether a create was sent without its answer being recorded)."""
        with self.db.session() as s:
            row = self._row(s, kind, target)
            return row.object_id, row.attempted_at is not None and row.object_id is None

    def set(self, kind: str, target: str, *, object_id: str | None, attempting: bool = False) -> None:
        with self.db.session() as s:
            row = self._row(s, kind, target)
            row.object_id, row.target_id = object_id, target
            row.attempted_at = self.clock() if attempting else None
            if object_id:
                row.written_at = self.clock()


def ensure(
    ledger: Ledger,
    kind: str,
    target: str,
    *,
    create: Callable[[], str],
    update: Callable[[str], bool],
    find: Callable[[], str | None],
) -> str:
    """The object's id after writing it: updated when its id is stored (re-created if someone deleted
    it in the CRM), found when a create's answer was lost, created otherwise."""
    oid, in_doubt = ledger.get(kind, target)
    if oid is not None:
        if update(oid):
            ledger.set(kind, target, object_id=oid)
            return oid
        in_doubt = False  # deleted in the CRM: write it again
    if in_doubt and (found := find()) is not None:
        ledger.set(kind, target, object_id=found)
        update(found)
        return found
    ledger.set(kind, target, object_id=None, attempting=True)  # committed before the create is sent
    oid = create()
    ledger.set(kind, target, object_id=oid)
    return oid


# --- HubSpot ---------------------------------------------------------------------------------------
class HubSpotWriter:
    def __init__(self, hs: HubSpot, ledger: Ledger, csm_property: str) -> None:
        self.hs, self.ledger, self.csm_property, self.v = hs, ledger, csm_property, hs.v

    def _find(self, object_type: str, from_type: str, from_id: str, prop: str, mark: str) -> str | None:
        ids = [to for to, _ in self.hs.associations(from_type, object_type, [from_id]).get(from_id, [])]
        found = self.hs.batch_read(object_type, ids, (prop,)) if ids else {}
        return next((i for i, p in sorted(found.items()) if mark in str(p.get(prop) or "")), None)

    def _patch(self, object_type: str, oid: str, props: dict[str, Any]) -> bool:
        return (
            self.hs.call("PATCH", f"/crm/objects/{self.v}/{object_type}/{oid}", json={"properties": props})
            is not None
        )

    def _create(self, object_type: str, props: dict[str, Any], to: list[tuple[str, int]]) -> str:
        assoc = [
            {"to": {"id": i}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t}]}
            for i, t in to
        ]
        made = self.hs.call(
            "POST", f"/crm/objects/{self.v}/{object_type}", json={"properties": props, "associations": assoc}
        )
        if not made or not made.get("id"):
            raise CrmError(f"HubSpot created a {object_type[:-1]} but gave no id")
        return str(made["id"])

    def owner_id(self, email: str) -> str | None:
        page = self.hs.call("GET", f"/crm/owners/{self.v}", params={"email": email, "limit": 1})
        return next((str(o["id"]) for o in (page or {}).get("results") or () if o.get("id")), None)

    def write(self, c: Content, deal_id: str, company_id: str | None, now: datetime) -> dict[str, Any]:
        done: dict[str, Any] = {}
        props = {"hs_note_body": c.html(), "hs_timestamp": now.astimezone(UTC).isoformat()}
        to = [(deal_id, NOTE_TO_DEAL), *([(company_id, NOTE_TO_COMPANY)] if company_id else [])]
        done["note"] = ensure(
            self.ledger,
            "note",
            deal_id,
            create=lambda: self._create("notes", props, to),
            update=lambda oid: self._patch("notes", oid, {"hs_note_body": props["hs_note_body"]}),
            find=lambda: self._find("notes", "deals", deal_id, "hs_note_body", c.marker),
        )
        owner = self.owner_id(c.csm_email) if c.csm_email else None
        if company_id and c.csm_email and self.csm_property:
            value = owner if self.csm_property.endswith("owner_id") else c.csm_email
            if value:
                self._patch("companies", company_id, {self.csm_property: value})
                done["csm"] = value
        if c.kickoff:
            due = datetime.combine(c.kickoff, time(9), ZoneInfo(self.hs.timezone or "UTC")).isoformat()
            task = {"hs_task_subject": c.task_subject, "hs_task_body": c.task_body, "hs_timestamp": due,
                    "hs_task_status": "NOT_STARTED", "hs_task_type": "TODO",
                    **({"hubspot_owner_id": owner} if owner else {})}  # fmt: skip
            tto = [(deal_id, TASK_TO_DEAL), *([(company_id, TASK_TO_COMPANY)] if company_id else [])]
            done["task"] = ensure(
                self.ledger,
                "task",
                deal_id,
                create=lambda: self._create("tasks", task, tto),
                update=lambda oid: self._patch(
                    "tasks", oid, {k: v for k, v in task.items() if k != "hs_task_status"}
                ),
                find=lambda: self._find("tasks", "deals", deal_id, "hs_task_subject", c.marker),
            )
        return done


# --- Salesforce ------------------------------------------------------------------------------------
def _soql_id(value: str) -> str:
    if not _SF_ID.match(value):
        raise Failed(f"{value[:40]!r} is not a Salesforce id")
    return value


def _soql_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class SalesforceWriter:
    def __init__(self, sf: Salesforce, ledger: Ledger, csm_field: str) -> None:
        self.sf, self.ledger, self.csm_field = sf, ledger, csm_field
        self.base = f"/services/data/{sf.rules.api_version}/sobjects"

    def _first(self, soql: str) -> str | None:
        return next((str(r["Id"]) for r in self.sf.query(soql) if r.get("Id")), None)

    def _patch(self, sobject: str, oid: str, fields: dict[str, Any]) -> bool:
        try:
            self.sf.call("PATCH", f"{self.base}/{sobject}/{_soql_id(oid)}", json=fields)
        except CrmRefused as exc:
            if exc.status == 404:  # deleted in Salesforce
                return False
            raise
        return True

    def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        made = self.sf.call("POST", f"{self.base}/{sobject}", json=fields)
        if not made or not made.get("id"):
            raise CrmError(f"Salesforce created a {sobject} but gave no id")
        return str(made["id"])

    def _note(self, kind: str, parent: str, c: Content) -> str:
        title = f"{c.title[:58]} {c.marker}"  # Note.Title holds 80
        fields = {"Title": title, "Body": c.text()[:32000]}
        where = f"ParentId = '{_soql_id(parent)}' AND Title LIKE '%{_soql_text(c.marker)}%'"
        return ensure(
            self.ledger,
            kind,
            parent,
            create=lambda: self._create("Note", {"ParentId": parent, **fields}),
            update=lambda oid: self._patch("Note", oid, fields),
            find=lambda: self._first(f"SELECT Id FROM Note WHERE {where} ORDER BY CreatedDate LIMIT 1"),
        )

    def user_id(self, email: str) -> str | None:
        return self._first(
            f"SELECT Id FROM User WHERE Email = '{_soql_text(email)}' AND IsActive = true LIMIT 1"
        )

    def write(self, c: Content, deal_id: str, company_id: str | None, now: datetime) -> dict[str, Any]:
        done: dict[str, Any] = {"deal_note": self._note("deal_note", deal_id, c)}
        if company_id:
            done["company_note"] = self._note("company_note", company_id, c)
        user = self.user_id(c.csm_email) if c.csm_email else None
        if company_id and c.csm_email and self.csm_field:
            value = user if self.csm_field.endswith("Id") else c.csm_email
            if value:
                self._patch("Account", company_id, {self.csm_field: value})
                done["csm"] = value
        if c.kickoff:
            fields = {"Subject": c.task_subject[:255], "ActivityDate": c.kickoff.isoformat(),
                      "Description": c.task_body[:32000], **({"OwnerId": user} if user else {})}  # fmt: skip
            where = f"WhatId = '{_soql_id(deal_id)}' AND Subject LIKE '%{_soql_text(c.marker)}%'"
            done["task"] = ensure(
                self.ledger,
                "task",
                deal_id,
                create=lambda: self._create("Task", {"WhatId": deal_id, "Status": "Not Started", **fields}),
                update=lambda oid: self._patch("Task", oid, fields),
                find=lambda: self._first(f"SELECT Id FROM Task WHERE {where} ORDER BY CreatedDate LIMIT 1"),
            )
        return done


# --- the sender ------------------------------------------------------------------------------------
def send(
    env: Env,
    handoff_id: int | None,
    payload: dict[str, Any],
    *,
    created: datetime,
    words: Words,
    email_of: Callable[[str], str | None] | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """Write the handoff into the CRM the row names. Raises ``Later`` (retry then) or ``Failed``;
    returns what was written (nothing when that CRM is no longer configured or write-back is off)."""
    settings, crm = env.settings, str(payload.get("crm") or "")
    rules = settings.rules.crm
    on = {"hubspot": settings.hubspot_on and rules.hubspot.writeback,
          "salesforce": settings.salesforce_on and rules.salesforce.writeback}  # fmt: skip
    if not on.get(crm):
        log.info("crm_writeback for handoff %s: %s is not configured for write-back", handoff_id, crm)
        return {}
    deal_id, company_id = str(payload.get("deal_id") or ""), payload.get("company_id") or None
    if handoff_id is None or not deal_id:
        raise Failed("the write-back names no handoff or deal")
    now = env.clock()
    with env.db.session() as s:
        if s.get(Handoff, handoff_id) is None:
            raise Failed("the handoff no longer exists")
        h = handoffs.get(s, handoff_id)
        if not h.permalink and first_post_pending(s, handoff_id=h.id) and now - created < CARD_WAIT:
            raise Later(timedelta(seconds=10), "waiting for the handoff card's link")
        c = content(env, words, h, _csm_email(env, h, email_of))
    ledger = Ledger(env.db, env.clock, handoff_id, crm)
    api: HubSpot | Salesforce
    writer: HubSpotWriter | SalesforceWriter
    if crm == "hubspot":
        hs = HubSpot(settings.hubspot_api_url, settings.hubspot_access_token, rules.hubspot,
                     client=client, sleep=_no_sleep, timezone=settings.rules.schedule.timezone)  # fmt: skip
        api, writer = hs, HubSpotWriter(hs, ledger, rules.hubspot.csm_property)
    else:
        sf = Salesforce(settings.salesforce_login_url, settings.salesforce_client_id,
                        settings.salesforce_client_secret, rules.salesforce, client=client,
                        sleep=_no_sleep)  # fmt: skip
        api, writer = sf, SalesforceWriter(sf, ledger, rules.salesforce.csm_field)
    try:
        return writer.write(c, deal_id, company_id, now)
    except _Pause as p:
        raise Later(
            timedelta(seconds=max(5, min(3600, int(p.seconds + 0.999)))), f"{crm}: busy, retrying"
        ) from p
    except RateLimited as exc:
        raise Later(timedelta(hours=1), str(exc)) from exc
    except CrmAuthError as exc:
        raise Later(timedelta(minutes=15), f"{exc} (retrying every 15 minutes)") from exc
    except CrmRefused as exc:
        raise Failed(str(exc)) from exc
    except CrmError as exc:
        raise Later(timedelta(minutes=1), str(exc)) from exc
    finally:
        if client is None:
            api.close()
