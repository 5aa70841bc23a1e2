"""Handoff services on both databases: the change and its audit event commit together or not at all."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from handoff import service
from handoff.service import Actor
from settings import Rules
from storage import Database
from storage.models import Account, Handoff, HandoffEvent
from tests.clocks import FakeClock
from tests.handoff.test_checklist import valid_form

RULES = Rules.load(None)
REP, CS = Actor("UREP"), Actor("UCS", is_cs=True)


def _create(db: Database, clock: FakeClock, **kw: object) -> int:
    with db.session() as s:
        return service.create(s, form=valid_form(**kw), actor=REP, clock=clock, rules=RULES).id


def test_create_stores_account_handoff_and_event_together(db: Database) -> None:
    clock = FakeClock()
    hid = _create(
        db, clock, stakeholders_external="Ann | CEO | ann@x.example", stakeholder_users=["U9", "U9"]
    )
    with db.session() as s:
        h = service.get(s, hid)
        assert h.account.name == "Acme" and h.account.mrr == Decimal("100")
        assert [(p.slack_user_id, p.name) for p in h.stakeholders] == [("U9", None), (None, "Ann")]
        (event,) = service.events(s, hid)
        assert (event.kind, event.actor_user_id, event.occurred_at) == ("created", "UREP", clock.now)


def test_a_second_open_handoff_for_an_account_is_refused(db: Database) -> None:
    clock = FakeClock()
    _create(db, clock)
    with pytest.raises(service.Invalid) as exc, db.session() as s:
        service.create(s, form=valid_form(account_name="ACME"), actor=REP, clock=clock, rules=RULES)
    assert exc.value.errors[0].code == "already_open"


def test_accept_requires_cs_and_is_idempotent(db: Database) -> None:
    clock = FakeClock()
    hid = _create(db, clock)
    with pytest.raises(service.NotAllowed), db.session() as s:
        service.accept(s, handoff_id=hid, actor=REP, clock=clock)
    clock.advance(hours=3)
    with db.session() as s:
        h, changed = service.accept(s, handoff_id=hid, actor=CS, clock=clock)
        assert changed and h.accepted_at == clock.now
    with db.session() as s:
        assert service.accept(s, handoff_id=hid, actor=CS, clock=clock)[1] is False
        assert [e.kind for e in service.events(s, hid)] == ["created", "accepted"]


def test_a_failure_after_the_change_rolls_back_the_event_too(db: Database) -> None:
    clock = FakeClock()
    hid = _create(db, clock)
    with pytest.raises(RuntimeError), db.session() as s:
        service.assign(s, handoff_id=hid, csm_user_id="UCSM", actor=CS, clock=clock)
        raise RuntimeError("crash before commit")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(HandoffEvent)) == 1
        assert s.scalars(select(Handoff.csm_user_id)).one() is None


def test_update_reports_changed_fields_and_detects_stale_versions(db: Database) -> None:
    clock = FakeClock()
    hid = _create(db, clock)
    with db.session() as s:
        revision = service.get(s, hid).revision
    with db.session() as s:
        _, changed = service.update(
            s,
            handoff_id=hid,
            expected_revision=revision,
            form=valid_form(seats=11, account_name="Acme KK"),
            actor=REP,
            clock=clock,
            rules=RULES,
        )
    assert changed == ["seats", "account_name"]
    with db.session() as s:
        assert s.scalars(select(Account.name)).one() == "Acme KK"
    with pytest.raises(service.Conflict), db.session() as s:
        service.update(
            s,
            handoff_id=hid,
            expected_revision=revision,
            form=valid_form(seats=12),
            actor=REP,
            clock=clock,
            rules=RULES,
        )
    with db.session() as s:  # an edit with nothing changed writes no event
        v = service.get(s, hid).revision
        assert (
            service.update(
                s,
                handoff_id=hid,
                expected_revision=v,
                form=valid_form(seats=11, account_name="Acme KK"),
                actor=REP,
                clock=clock,
                rules=RULES,
            )[1]
            == []
        )
        assert [e.kind for e in service.events(s, hid)] == ["created", "edited"]


def test_lookup_suggests_similar_names(db: Database) -> None:
    clock = FakeClock()
    _create(db, clock, account_name="Globex Japan")
    with pytest.raises(service.NotFound) as exc, db.session() as s:
        service.latest_for_account(s, "globex")
    assert exc.value.params["suggestions"] == ["Globex Japan"]


def test_the_database_itself_allows_one_open_handoff_per_account(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two submissions racing past the application's check are stopped by the partial unique index."""
    clock = FakeClock()
    _create(db, clock)
    monkeypatch.setattr(service, "_open_handoff_for", lambda session, account: None)  # the race
    with pytest.raises(service.Invalid) as exc, db.session() as s:
        service.create(s, form=valid_form(), actor=REP, clock=clock, rules=RULES)
    assert exc.value.errors[0].code == "already_open"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Handoff)) == 1
        assert s.scalar(select(func.count()).select_from(HandoffEvent)) == 1
