"""Which CRM deal a handoff belongs to, and queueing its write-back in the change's own transaction.

It lives in handoff/ and reads only storage, so the handoff use cases queue it without importing
crm/ (which imports handoff/); ``crm.writeback`` is the sender. A handoff belongs to a deal when
the deal's row names it (opened from the "Start handoff" DM) or, failing that, when its account
carries the deal's CRM company id and the deal has no handoff yet: that deal is linked to it here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage import outbox
from storage.models import CrmDeal, Handoff, Outbox

WRITEBACK = "crm_writeback"  # the outbox action: bot/delivery.py SENDERS dispatches it to crm.writeback


def deal_for(session: Session, h: Handoff) -> CrmDeal | None:
    deal = session.scalars(
        select(CrmDeal).where(CrmDeal.handoff_id == h.id).order_by(CrmDeal.id.desc()).limit(1)
    ).first()
    if deal is not None or not h.account.external_id:
        return deal
    deal = session.scalars(
        select(CrmDeal)
        .where(CrmDeal.company_id == h.account.external_id, CrmDeal.handoff_id.is_(None))
        .order_by(CrmDeal.found_at.desc(), CrmDeal.id.desc())
        .limit(1)
    ).first()
    if deal is not None:
        deal.handoff_id = h.id
    return deal


def link_deal(session: Session, crm_deal_id: int, h: Handoff) -> bool:
    """Name ``h`` on the deal it was started from (the "Start handoff" modal), before its card and
    write-back are queued. A conditional UPDATE: False when the deal is gone or another handoff took
    it first (two people submitting from the same DM), so the caller refuses instead of relinking."""
    won = session.execute(
        update(CrmDeal)
        .where(CrmDeal.id == crm_deal_id, CrmDeal.handoff_id.is_(None))
        .values(handoff_id=h.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    return won == 1


def queue_writeback(session: Session, h: Handoff, at: datetime) -> Outbox | None:
    """One write-back row for a handoff that came from a CRM deal; none while one is still pending (it
    renders the handoff as it is when sent, so it already carries this change)."""
    deal = deal_for(session, h)
    if deal is None:
        return None
    waiting = session.scalar(
        select(Outbox.id)
        .where(Outbox.handoff_id == h.id, Outbox.action == WRITEBACK, Outbox.state == "pending")
        .limit(1)
    )
    if waiting is not None:
        return None
    return outbox.enqueue(
        session, None, WRITEBACK, at, handoff_id=h.id, crm=deal.crm, deal_id=deal.deal_id,
        company_id=deal.company_id,
    )  # fmt: skip
