"""One pass over a CRM: won deals taken once each, and accounts through the same ingest as files.

The CRM is read outside any transaction (a 429 storm may sleep; SQLite's one writer must not wait on
it); what was read is then recorded in one short unit of work: the new ``crm_deals`` rows, the hook
that queues each owner's DM, and the watermark, together. A deal seen again (the next poll, a repeated
webhook) is found by its CRM id and skipped. Accounts are mapped through ``crm.<name>.account_fields``
into accounts-file records and handed to ``ingest.ingest``: the same checks, all or nothing."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clock import Clock
from crm.http import CrmError
from crm.model import WonDeal
from ingest import Batch, IngestError, Problem, Records, Result, ingest, ingest_accounts
from storage.db import Database, serialize
from storage.limits import describe, text_problem
from storage.models import CrmCursor, CrmDeal
from storage.outbox import enqueue

WON_DEALS = "won_deals"  # the crm_cursors stream of the won-deal poll
# Each poll reads again from this long before the watermark: HubSpot's search index lags writes, offset
# paging over a set that changes meanwhile can step over a row, and a long Salesforce transaction
# commits with an earlier SystemModstamp than rows already seen. The stored ids make the overlap free.
OVERLAP = timedelta(minutes=10)
# The outbox action bot/ registers for the deal owner's "Start handoff" DM (Outbox.action is 16 long).
WON_DEAL_DM = "crm_won_deal"

OnWon = Callable[[Session, CrmDeal], None]  # runs in the recording transaction, once per new deal


class DealSource(Protocol):
    name: str

    def won_deals(self, since: datetime) -> Iterator[tuple[WonDeal, datetime]]: ...


@dataclass
class Fetched:
    """What a CRM answered, before anything is recorded."""

    crm: str
    since: datetime
    deals: list[tuple[WonDeal, datetime]]
    started: datetime | None = None  # when the read began: the watermark never passes it


@dataclass
class DealPass:
    crm: str
    since: datetime
    new: list[WonDeal] = field(default_factory=list)
    already: int = 0  # deals read again that were taken before
    watermark: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "new": [
                {
                    "deal_id": d.deal_id,
                    "name": d.name,
                    "account": d.account_name,
                    "owner_email": d.owner_email,
                    "amount": str(d.amount) if d.amount is not None else None,
                    "currency": d.currency,
                    "close_date": d.close_date.isoformat() if d.close_date else None,
                }
                for d in self.new
            ],
            "already_taken": self.already,
        }


def watermark(session: Session, crm: str, *, clock: Clock, backfill_days: int) -> datetime:
    """Where the next poll starts: OVERLAP before the stored watermark, or ``backfill_days`` ago on the
    first pass (connecting a CRM must not DM every deal it ever won)."""
    cursor = session.get(CrmCursor, (crm, WON_DEALS))
    if cursor is None:
        return clock() - timedelta(days=backfill_days)
    return datetime.fromisoformat(cursor.watermark) - OVERLAP


def fetch(source: DealSource, since: datetime, *, clock: Clock) -> Fetched:
    started = clock()
    return Fetched(source.name, since, list(source.won_deals(since)), started)


def record(
    session: Session,
    fetched: Fetched,
    *,
    clock: Clock,
    on_won: OnWon | None = None,
    dry_run: bool = False,
    move_watermark: bool = True,
) -> DealPass:
    """Record the deals not taken before and move the watermark, in the caller's unit of work.
    ``on_won`` (bot/: queue the owner's DM in the outbox) runs for each new deal, and marks it
    announced; without it the rows wait with ``announced_at`` empty (``unannounced``). Deals a webhook
    named are recorded with ``move_watermark=False``: their change times say nothing about what the
    poll has read, and moving the watermark past them would skip deals changed in between."""
    out = DealPass(fetched.crm, fetched.since)
    for deal, _ in fetched.deals:
        if problem := text_problem(deal.deal_id, CrmDeal.deal_id):
            raise CrmError(
                f"{fetched.crm} deal id {deal.deal_id[:80]!r} {describe(problem)}; nothing recorded"
            )
    if not dry_run:
        serialize(session, f"crm_deals:{fetched.crm}")  # two instances polling at once take turns here
    ids = [d.deal_id for d, _ in fetched.deals]
    known = set(
        session.scalars(select(CrmDeal.deal_id).where(CrmDeal.crm == fetched.crm, CrmDeal.deal_id.in_(ids)))
    )
    now = clock()
    for deal, modified in fetched.deals:
        seen = min(modified, fetched.started) if fetched.started else modified  # a CRM clock ahead of ours
        out.watermark = max(out.watermark or seen, seen)
        if deal.deal_id in known:
            out.already += 1
            continue
        known.add(deal.deal_id)
        out.new.append(deal)
        if dry_run:
            continue
        row = CrmDeal(
            crm=fetched.crm,
            deal_id=deal.deal_id,
            company_id=_fits(deal.company_id, CrmDeal.company_id),
            owner_email=_fits(deal.owner_email, CrmDeal.owner_email),
            deal=deal.as_json(),
            found_at=now,
        )
        session.add(row)
        if on_won is not None:
            session.flush()
            on_won(session, row)
            row.announced_at = now
    if dry_run or out.watermark is None or not move_watermark:
        return out
    cursor = session.get(CrmCursor, (fetched.crm, WON_DEALS))
    stamp = out.watermark.astimezone(UTC).isoformat()
    if cursor is None:
        session.add(CrmCursor(crm=fetched.crm, stream=WON_DEALS, watermark=stamp, updated_at=now))
    elif datetime.fromisoformat(cursor.watermark) < out.watermark:
        cursor.watermark, cursor.updated_at = stamp, now
    return out


def _fits(value: str | None, column: Any) -> str | None:
    """An optional value the column can hold, else None (an owner email too long to be one)."""
    return value if value and text_problem(value, column) is None else None


def announce(session: Session, row: CrmDeal) -> None:
    """The ``on_won`` hook: the owner's "Start handoff" DM, queued with the deal's row (bot/ sends it)."""
    enqueue(session, None, WON_DEAL_DM, row.found_at, crm_deal=row.id, step="dm")


def queue_nudges(session: Session, *, now: datetime, after: timedelta) -> int:
    """Deals announced at least ``after`` ago that still have no handoff: the owner nudged and the sales
    lead told, once each. ``nudged_at`` is set by a conditional UPDATE, so two instances running the
    pass at once queue one pair. Returns how many deals were nudged."""
    due = session.scalars(
        select(CrmDeal.id).where(
            CrmDeal.handoff_id.is_(None),
            CrmDeal.nudged_at.is_(None),
            CrmDeal.announced_at.is_not(None),
            CrmDeal.announced_at <= now - after,
        )
    ).all()
    nudged = 0
    for deal_id in due:
        won = session.execute(
            update(CrmDeal)
            .where(CrmDeal.id == deal_id, CrmDeal.nudged_at.is_(None), CrmDeal.handoff_id.is_(None))
            .values(nudged_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            continue
        enqueue(session, None, WON_DEAL_DM, now, crm_deal=deal_id, step="nudge")
        enqueue(session, None, WON_DEAL_DM, now, crm_deal=deal_id, step="lead")
        nudged += 1
    return nudged


def unannounced(session: Session, crm: str | None = None) -> list[CrmDeal]:
    """Won deals whose owner has not been sent a "Start handoff" DM yet (bot/ picks these up)."""
    stmt = select(CrmDeal).where(CrmDeal.announced_at.is_(None)).order_by(CrmDeal.id)
    if crm:
        stmt = stmt.where(CrmDeal.crm == crm)
    return list(session.scalars(stmt))


# --- accounts ------------------------------------------------------------------------------------
_DATE_COLUMNS = ("contract_start", "renewal_date", "churned_on")
_EPOCH_MS = re.compile(r"^\d{12,13}$")


def _dig(rec: dict[str, Any], path: str) -> Any:
    value: Any = rec
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None and "." not in path:
        value = rec.get(path)
    return value


def _cell(column: str, value: Any) -> Any:
    """A CRM value as an accounts file would hold it: dates without their time (``2026-11-30T00:00:00Z``
    and HubSpot's midnight milliseconds), whole numbers without ``.0`` (Salesforce sends 50.0 seats)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if column in _DATE_COLUMNS and value not in (None, ""):
        text = str(value).strip()
        if _EPOCH_MS.match(text):
            return datetime.fromtimestamp(int(text) / 1000, UTC).date().isoformat()
        if re.match(r"^\d{4}-\d{2}-\d{2}T", text):
            return text[:10]
    return value


def account_records(
    rows: Iterable[tuple[str, dict[str, Any]]], fields: dict[str, str]
) -> tuple[Records, list[str]]:
    """CRM records as accounts-file records (JSON lines), and the CRM id of each line, so a refusal
    names the CRM record to fix."""
    ids: list[str] = []
    lines: list[str] = []
    for crm_id, rec in rows:
        ids.append(crm_id)
        item = {col: _cell(col, _dig(rec, path)) for col, path in fields.items()}
        lines.append(json.dumps({k: v for k, v in item.items() if v not in (None, "")}, ensure_ascii=False))
    return Records(io.StringIO("\n".join(lines) + "\n"), "json"), ids


def sync_accounts(
    db: Database,
    crm: str,
    rows: Iterable[tuple[str, dict[str, Any]]],
    fields: dict[str, str],
    *,
    clock: Clock,
    timezone: str,
    as_of: date,
    dry_run: bool = False,
) -> Result:
    """The CRM's accounts into Baton through ``ingest`` (its own unit of work, as for a file): upserted
    by account_id, a snapshot as of ``as_of``. A refusal (IngestError) names each bad record by its
    CRM id; nothing is written then. ``dry_run`` runs every check and rolls back."""
    records, ids = account_records(rows, fields)
    batch = Batch(clock=clock, timezone=timezone, as_of=as_of, source=crm)
    try:
        if not dry_run:
            return ingest(db, "accounts", records, batch)
        with db.session() as session:
            result = ingest_accounts(session, records, as_of=as_of, now=clock(), today=batch.today)
            session.rollback()
            return result
    except IngestError as exc:
        named = [
            Problem(p.line, f"{crm} record {ids[p.line - 1]}: {p.message}") if 0 < p.line <= len(ids) else p
            for p in exc.problems
        ]
        raise IngestError(named, exc.bad) from None
