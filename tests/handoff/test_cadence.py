"""The onboarding cadence per touch tier, touch logging, and the onboarding completion rate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from digest.kpi import compute
from handoff import cadence, service
from handoff.cadence import Kind, completed, parse_touch, plan
from handoff.service import Actor
from settings import Rules
from storage import Database
from storage.models import HandoffEvent
from tests.clocks import FakeClock
from tests.handoff.test_checklist import valid_form

RULES = Rules.load(None)
CSM = Actor("UCSM", is_cs=True)


def test_high_touch_plan_and_matching_touches_in_order() -> None:
    start = date(2026, 7, 1)
    ms = plan("high", start, [("kickoff", date(2026, 7, 5)), ("check_in", date(2026, 7, 14))])
    # a kickoff in week one, then weekly, biweekly and monthly check-ins
    weekly_biweekly_monthly = [("check_in", d) for d in (14, 21, 28, 42, 56, 90)]
    assert [(m.kind, (m.due - start).days) for m in ms] == [("kickoff", 7), *weekly_biweekly_monthly]
    assert [m.done_on for m in ms[:3]] == [date(2026, 7, 5), date(2026, 7, 14), None]
    assert not completed(ms, start + timedelta(days=90))
    tech = plan("tech", start, [("welcome", start), ("usage_check", date(2026, 7, 30))])
    assert completed(tech, start + timedelta(days=90))
    assert len(plan("mid", start, [])) == 4


def test_touch_commands_are_parsed_around_the_kind() -> None:
    assert parse_touch("Acme Corp kickoff Goals agreed") == ("Acme Corp", Kind.KICKOFF, "Goals agreed")
    assert parse_touch("株式会社ミライ物流 check-in") == ("株式会社ミライ物流", Kind.CHECK_IN, "")
    assert parse_touch("Acme Corp") is None and parse_touch("kickoff") is None


def _handoff(db: Database, name: str, created: datetime, price: int) -> None:
    with db.session() as s:
        service.create(
            s,
            form=valid_form(account_name=name, price_amount=Decimal(price)),
            actor=Actor("UREP"),
            clock=FakeClock(created),
            rules=RULES,
        )


def _log(db: Database, name: str, kind: Kind, at: datetime) -> list[cadence.Milestone]:
    with db.session() as s:
        return cadence.log_touch(s, account_name=name, kind=kind, note="ok", actor=CSM, clock=FakeClock(at))[
            1
        ]


def test_onboarding_completion_rate_counts_onboardings_that_ended_in_the_month(db: Database) -> None:
    start = datetime(2026, 7, 5, 1, tzinfo=UTC)  # 90 days later is 2026-10-03: ends in October
    _handoff(db, "Done Co", start, 100)  # USD 100/month: tech touch -> welcome + usage check
    _handoff(db, "Late Co", start, 100)
    _log(db, "Done Co", Kind.WELCOME, start + timedelta(days=1))
    ms = _log(db, "Done Co", Kind.USAGE_CHECK, start + timedelta(days=30))
    assert all(m.done_on for m in ms)
    _log(db, "Late Co", Kind.WELCOME, start + timedelta(days=2))
    _log(db, "Late Co", Kind.USAGE_CHECK, start + timedelta(days=95))  # after its onboarding ended
    with db.session() as s:
        k = compute(s, date(2026, 11, 23))
        events = s.scalars(select(HandoffEvent.kind).where(HandoffEvent.kind == "touch_logged")).all()
    assert k["onboarding_completion_rate"] == 50.0
    assert k["denominators"]["onboarding_completion_rate"] == (
        "companies whose 90-day onboarding ended in 2026-10 (2)"
    )
    assert len(events) == 4  # each touch audited with the handoff
