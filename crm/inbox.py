"""Deal ids a signed HubSpot webhook named, taken by the next pass: the route only stores them (and
answers at once, with no CRM call), the pass reads those deals and records the won ones through the
same ``sync.record`` as the poll, so a deal named twice, or named and then polled, is taken once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clock import Clock
from crm import sync
from crm.hubspot import HubSpot
from storage import Database
from storage.limits import text_problem
from storage.models import CrmDeal, CrmInbox

log = logging.getLogger(__name__)

BATCH = 500  # ids read per pass (HubSpot reads them 100 at a time)


def receive(session: Session, crm: str, deal_ids: list[str], now: datetime) -> int:
    """Store the ids not taken yet and not already waiting; returns how many were new. An id too long
    to be one is dropped (a signed delivery will not send one)."""
    ids = [d for d in dict.fromkeys(deal_ids) if text_problem(d, CrmInbox.deal_id) is None]
    if not ids:
        return 0
    taken = set(session.scalars(select(CrmDeal.deal_id).where(CrmDeal.crm == crm, CrmDeal.deal_id.in_(ids))))
    waiting = set(
        session.scalars(
            select(CrmInbox.deal_id).where(
                CrmInbox.crm == crm, CrmInbox.deal_id.in_(ids), CrmInbox.done_at.is_(None)
            )
        )
    )
    new = [d for d in ids if d not in taken and d not in waiting]
    session.add_all(CrmInbox(crm=crm, deal_id=d, received_at=now) for d in new)
    return len(new)


def pending(session: Session, crm: str) -> list[CrmInbox]:
    stmt = (
        select(CrmInbox)
        .where(CrmInbox.crm == crm, CrmInbox.done_at.is_(None))
        .order_by(CrmInbox.id)
        .limit(BATCH)
    )
    return list(session.scalars(stmt))


def take(
    db: Database, hs: HubSpot, *, clock: Clock, on_won: sync.OnWon | None = None
) -> sync.DealPass | None:
    """Read the waiting deals (outside any transaction), record the won ones and mark the rows done, in
    one unit of work. None when nothing waits. A deal that is not won (yet) is done too: the delivery
    that says it was won adds it again."""
    with db.session() as s:
        rows = [(r.id, r.deal_id) for r in pending(s, hs.name)]
    if not rows:
        return None
    started = clock()
    deals = list(hs.deals(sorted({d for _, d in rows})))
    fetched = sync.Fetched(hs.name, started, deals, started)
    with db.session() as s:
        done = sync.record(s, fetched, clock=clock, on_won=on_won, move_watermark=False)
        for r in s.scalars(select(CrmInbox).where(CrmInbox.id.in_([i for i, _ in rows]))):
            r.done_at = clock()
    return done


class Coalesced:
    """Runs ``work`` on one background thread at a time: a kick while it runs asks for one more run
    after it, instead of a second thread reading the same deals (a burst of webhook deliveries would
    otherwise fan out into parallel passes and spend HubSpot's rate limit on the same reads)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def __call__(self) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._loop, daemon=True, name="crm-webhook-pass").start()

    def _loop(self) -> None:
        while True:
            try:
                self._work()
            except Exception:  # logged; the scheduled pass takes what is left
                log.warning("the webhook pass failed; the scheduled pass will take its deals", exc_info=True)
            with self._lock:
                if not self._again:
                    self._running = False
                    return
                self._again = False
