"""Jobs are registered once with stable ids, and each scheduled run happens once across instances."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from jobs.scheduler import CADENCE, DIGEST, OUTBOX, PULL, SCAN, Jobs, build_scheduler
from settings import Rules, Settings
from storage import Database
from storage.models import Account, Alert, JobRun, Outbox
from tests.alerts.factory import AS_OF, accounts, daily
from tests.clocks import FakeClock
from tests.concurrency import at_once

SETTINGS = Settings(rules=Rules.load(None))
# 07:00 in Tokyo on the day after AS_OF: the daily scan's usual moment
MORNING = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)


def test_jobs_are_registered_once_with_stable_ids_timezone_coalescing_and_grace() -> None:
    jobs = Jobs(None, SETTINGS, FakeClock(), deliver=lambda: None, pull=lambda: None)  # type: ignore[arg-type]
    sched = build_scheduler(jobs, SETTINGS)
    sched.start(paused=True)
    try:
        registered = {j.id: j for j in sched.get_jobs()}
        assert set(registered) == {SCAN, PULL, OUTBOX, DIGEST, CADENCE, "baton.catch_up"}
        assert "day_of_week='mon'" in str(registered[DIGEST].trigger)
        scan = registered[SCAN]
        assert str(scan.trigger.timezone) == "Asia/Tokyo" and "hour='7'" in str(scan.trigger)
        assert scan.coalesce is True and scan.misfire_grace_time == 3600 and scan.max_instances == 1
        build_scheduler(jobs, SETTINGS)  # building again is harmless: replace_existing with the same ids
    finally:
        sched.shutdown(wait=False)


def test_two_instances_run_the_scan_once(db: Database) -> None:
    accounts(db, ("IDLE", 50, "Pro"))
    daily(db, "IDLE", "active_users", lambda n: 30 if n >= 20 else 0)
    clock = FakeClock(MORNING)
    delivered: list[str] = []
    instances = [
        Jobs(db, SETTINGS, clock, deliver=lambda i=i: delivered.append(i), instance=f"node-{i}")
        for i in range(2)
    ]
    results = at_once([j.scan_job for j in instances])
    assert sorted(results) == [False, True]
    assert len(delivered) == 1
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        run = s.scalars(select(JobRun)).one()
        assert run.outcome.startswith(f"as_of {AS_OF.isoformat()}: 1 raised")  # data up to yesterday
    clock.advance(days=1)  # the next morning it runs again, once
    assert instances[1].scan_job() is True and instances[0].scan_job() is False


def test_a_failed_scan_leaves_its_day_free_for_a_retry(db: Database, monkeypatch) -> None:
    import jobs.scheduler as sched_module

    accounts(db, ("IDLE", 50, "Pro"))
    daily(db, "IDLE", "active_users", lambda n: 30 if n >= 20 else 0)
    jobs = Jobs(db, SETTINGS, FakeClock(MORNING))
    real_scan = sched_module.scan

    def broken(*a, **k):
        real_scan(*a, **k)
        raise RuntimeError("crash mid-scan")

    monkeypatch.setattr(sched_module, "scan", broken)
    with pytest.raises(RuntimeError):
        jobs.scan_job()
    with db.session() as s:  # the ledger row and the alerts went with the failed transaction
        assert s.scalar(select(func.count()).select_from(JobRun)) == 0
        assert s.scalar(select(func.count()).select_from(Alert)) == 0
    monkeypatch.setattr(sched_module, "scan", real_scan)
    assert jobs.scan_job() is True


def test_catch_up_runs_a_missed_scan_once_and_not_before_its_time(db: Database) -> None:
    early = FakeClock(MORNING - timedelta(hours=1))  # 06:00 in Tokyo
    assert Jobs(db, SETTINGS, early).catch_up() is False
    late = FakeClock(MORNING + timedelta(hours=3))  # restarted at 10:00, the 07:00 run was missed
    assert Jobs(db, SETTINGS, late).catch_up() is True
    assert Jobs(db, SETTINGS, late, instance="other").catch_up() is False


def test_the_cadence_job_queues_the_days_reminders_once_across_instances(db: Database) -> None:
    # renewal 2026-12-23: 30 days after 2026-11-23, the Tokyo day of MORNING + 3 hours
    accounts(db, ("RENEW", 10, "Pro"), renewal="2026-12-23")
    clock = FakeClock(MORNING + timedelta(hours=3))
    delivered: list[int] = []
    a = Jobs(db, SETTINGS, clock, deliver=lambda: delivered.append(1), instance="a")
    b = Jobs(db, SETTINGS, clock, deliver=lambda: delivered.append(2), instance="b")
    assert a.cadence_job() is True and b.cadence_job() is False and delivered == [1]
    with db.session() as s:
        (row,) = s.scalars(select(Outbox).where(Outbox.action == "reminders")).all()
        assert [(r["account"], r["days_left"]) for r in row.payload["reminders"]] == [("Account RENEW", 30)]
        assert s.get(JobRun, (CADENCE, datetime(2026, 11, 22, 15, tzinfo=UTC))).outcome.startswith(
            "1 reminders in 1 messages"
        )
    clock.advance(days=1)
    assert b.cadence_job() is True  # the next day runs, and has nothing new to say
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.action == "reminders")) == 1


def test_the_cadence_job_maps_csm_emails_before_it_picks_recipients(db: Database) -> None:
    from storage.directory import record_lookup
    from tests.storage.test_directory import crm_accounts

    crm_accounts(db, ("CRM1", "Mirai", "hana@example.com"))
    with db.session() as s:
        s.scalars(select(Account)).one().renewal_date = date(2026, 12, 23)
    clock = FakeClock(MORNING + timedelta(hours=3))

    def resolve() -> str:  # stands in for bot.directory.resolve_csm_emails
        with db.session() as s:
            record_lookup(s, "hana@example.com", "UHANA", None, clock())
        return "1 looked up"

    assert Jobs(db, SETTINGS, clock, resolve=resolve).cadence_job() is True
    with db.session() as s:
        (row,) = s.scalars(select(Outbox).where(Outbox.action == "reminders")).all()
        assert row.payload["recipient"] == "UHANA"


def test_a_failing_lookup_does_not_stop_the_reminders(db: Database) -> None:
    accounts(db, ("RENEW", 10, "Pro"), renewal="2026-12-23")

    def resolve() -> str:
        raise ConnectionError("slack unreachable")

    assert Jobs(db, SETTINGS, FakeClock(MORNING + timedelta(hours=3)), resolve=resolve).cadence_job() is True
