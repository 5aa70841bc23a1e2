"""The outbox rows a handoff's messages are: written with the change or not at all, one card per
handoff however often it is asked for, and the card's state readable for what the submitter is told."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from handoff import service
from handoff.service import Actor
from settings import Rules
from storage import Database, outbox
from storage.models import Outbox
from tests.clocks import FakeClock
from tests.handoff.test_checklist import valid_form


def _create(db: Database, clock: FakeClock) -> int:
    with db.session() as s:
        h = service.create(s, form=valid_form(), actor=Actor("U1"), clock=clock, rules=Rules.load(None))
        service.queue_card(s, h, "C1", clock())
        service.queue_nudge(s, h, clock())
        return h.id


def test_messages_are_written_with_the_change_or_not_at_all(db: Database) -> None:
    clock = FakeClock()
    with pytest.raises(RuntimeError), db.session() as s:
        h = service.create(s, form=valid_form(), actor=Actor("U1"), clock=clock, rules=Rules.load(None))
        service.queue_card(s, h, "C1", clock())
        raise RuntimeError  # the change fails after its messages were queued
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0
    hid = _create(db, clock)
    with db.session() as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [(r.action, r.handoff_id, r.state) for r in rows] == [
            ("card", hid, "pending"),
            ("nudge", hid, "pending"),
        ]


def test_one_card_per_handoff_while_it_is_queued_or_posted(db: Database) -> None:
    clock = FakeClock()
    hid = _create(db, clock)
    with db.session() as s:
        h = service.get(s, hid)
        assert outbox.first_post_pending(s, handoff_id=hid)
        assert service.queue_card(s, h, "C1", clock()) is None  # an edit before it went out
        assert service.card_state(s, hid) == ("pending", None)
        card = s.scalars(select(Outbox).where(Outbox.action == "card")).one()
        card.state, card.last_error = "dead", "Slack refused: invalid_blocks"
    with db.session() as s:
        assert service.card_state(s, hid) == ("dead", "Slack refused: invalid_blocks")
        assert not outbox.first_post_pending(s, handoff_id=hid)
        h = service.get(s, hid)
        assert service.queue_card(s, h, None, clock()) is None  # no channel: nothing queued
        assert service.queue_card(s, h, "C1", clock()) is not None  # given up on: queued again
        service.record_post(s, handoff_id=hid, channel_id="C1", ts="1.0", permalink=None)
    with db.session() as s:
        assert service.queue_card(s, service.get(s, hid), "C1", clock()) is None  # posted


def test_a_change_on_a_card_not_yet_posted_queues_only_its_note(db: Database) -> None:
    clock = FakeClock()
    hid = _create(db, clock)
    with db.session() as s:
        service.queue_change(s, service.get(s, hid), clock(), "accepted")
        service.record_post(s, handoff_id=hid, channel_id="C1", ts="1.0", permalink=None)
    with db.session() as s:
        service.queue_change(s, service.get(s, hid), clock(), None)
        actions = s.scalars(select(Outbox.action).order_by(Outbox.id)).all()
    assert actions == ["card", "nudge", "card_note", "card_update"]
