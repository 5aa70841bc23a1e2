"""The scheduled CRM pass: once per ``crm.poll_minutes`` slot across instances (fired directly, never
by sleeping), doing what `app.py crm sync` does, plus the deals HubSpot webhooks named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from crm import inbox
from crm.cli import scheduled_pass, sources
from crm.hubspot import HubSpot
from jobs.scheduler import CRM, Jobs, build_scheduler
from storage import Database
from storage.models import CrmCursor, CrmDeal, JobRun
from tests.clocks import FakeClock
from tests.concurrency import at_once
from tests.crm.fakecrm import FakeHubSpot, seed_hubspot_deal
from tests.crm.test_sync import settings_for

NOW = datetime(2026, 12, 1, 1, 3, tzinfo=UTC)


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


def jobs_for(db: Database, hs: FakeHubSpot, clock: FakeClock, name: str, delivered: list[str]) -> Jobs:
    settings = settings_for(hs)
    return Jobs(
        db,
        settings,
        clock,
        deliver=lambda: delivered.append(name),
        instance=name,
        crm_sync=lambda: scheduled_pass(settings, db, clock=clock),
    )


def test_two_instances_run_each_slot_once_and_the_next_slot_runs_again(
    db: Database, hubspot: FakeHubSpot
) -> None:
    seed_hubspot_deal(hubspot, modified="2026-11-30T10:00:00.000Z")
    clock, delivered = FakeClock(NOW), []
    instances = [jobs_for(db, hubspot, clock, f"node-{i}", delivered) for i in range(2)]
    results = at_once([j.crm_job for j in instances])
    assert sorted(results) == [False, True]
    assert len(delivered) == 1
    searches = [p for p in hubspot.paths() if p.endswith("/deals/search")]
    assert len(searches) == 1
    with db.session() as s:
        (run,) = s.scalars(select(JobRun).where(JobRun.job_id == CRM))
        assert run.scheduled_for == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # the 15-minute slot
        assert "hubspot: 1 new, 0 seen before, 1 accounts" in (run.outcome or "")
        assert len(list(s.scalars(select(CrmDeal)))) == 1

    clock.advance(minutes=10)  # 01:13: still the same slot
    assert instances[1].crm_job() is False
    clock.advance(minutes=5)  # 01:18: the next one
    assert instances[1].crm_job() is True
    with db.session() as s:
        runs = list(s.scalars(select(JobRun).where(JobRun.job_id == CRM).order_by(JobRun.scheduled_for)))
    assert "hubspot: 0 new, 1 seen before" in (runs[-1].outcome or "") and len(runs) == 2


def test_deals_a_webhook_named_are_taken_once_without_moving_the_watermark(
    db: Database, hubspot: FakeHubSpot
) -> None:
    old = seed_hubspot_deal(hubspot, name="Old Co - Pro", modified="2026-11-30T10:00:00.000Z")
    clock = FakeClock(NOW)
    jobs = jobs_for(db, hubspot, clock, "a", [])
    assert jobs.crm_job() is True
    with db.session() as s:
        mark = s.get(CrmCursor, ("hubspot", "won_deals")).watermark
    # a deal won later, named by a webhook (twice, with one already taken)
    late = seed_hubspot_deal(hubspot, name="Late Co - Pro", modified="2026-12-01T01:10:00.000Z")
    with db.session() as s:
        assert inbox.receive(s, "hubspot", [late.deal_id, late.deal_id, old.deal_id], clock()) == 1
        assert inbox.receive(s, "hubspot", [late.deal_id], clock()) == 0  # already waiting
    clock.advance(minutes=15)
    hs = sources(settings_for(hubspot))[0]
    assert isinstance(hs, HubSpot)
    taken = inbox.take(db, hs, clock=clock)
    assert taken is not None and [d.deal_id for d in taken.new] == [late.deal_id]
    with db.session() as s:
        assert s.get(CrmCursor, ("hubspot", "won_deals")).watermark == mark  # the poll's, untouched
        inbox.receive(s, "hubspot", [late.deal_id], clock())  # delivered again after it was taken: nothing
        assert inbox.pending(s, "hubspot") == []
    assert jobs.crm_job() is True
    with db.session() as s:
        assert sorted(d.deal_id for d in s.scalars(select(CrmDeal))) == sorted([old.deal_id, late.deal_id])
        run = s.scalars(select(JobRun).order_by(JobRun.scheduled_for.desc())).first()
        assert "hubspot: 0 new, 2 seen before" in (run.outcome or "")


def test_without_a_crm_the_job_is_not_scheduled_and_does_nothing(db: Database) -> None:
    settings = settings_for()
    jobs = Jobs(db, settings, FakeClock(NOW))
    assert jobs.crm_job() is False
    sched = build_scheduler(jobs, settings)
    assert CRM not in {j.id for j in sched.get_jobs()}
    with_crm = Jobs(db, settings, FakeClock(NOW), crm_sync=lambda: "ok")
    sched = build_scheduler(with_crm, settings)
    sched.start(paused=True)
    try:
        job = sched.get_job(CRM)
        assert "interval[0:15:00]" in str(job.trigger)
    finally:
        sched.shutdown(wait=False)


def test_a_failing_pass_is_recorded_and_the_next_slot_tries_again(db: Database) -> None:
    clock = FakeClock(NOW)

    def boom() -> str:
        raise RuntimeError("HubSpot exploded")

    jobs = Jobs(db, settings_for(), clock, crm_sync=boom)
    assert jobs.crm_job() is True
    with db.session() as s:
        assert s.scalars(select(JobRun.outcome)).one() == "failed: HubSpot exploded"
    clock.advance(minutes=15)
    assert jobs.crm_job() is True
