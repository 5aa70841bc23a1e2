"""APScheduler 3 runs Baton's jobs in each instance; a run ledger makes each scheduled run happen once.

APScheduler 3 cannot share a job store between instances, so every instance schedules the same jobs
in memory and the job bodies coordinate through the database: the first instance to insert the
(job id, slot) row into ``job_runs`` runs the job, the others see the unique key taken and skip.
The outbox drain needs no ledger: each row is claimed by a conditional UPDATE that one drain wins."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from alerts.service import scan
from clock import Clock, utcnow
from digest.report import build as build_digest
from handoff import reminders
from model import decisions
from model.service import needs_training, train_if_stale
from settings import Settings
from storage import Database
from storage.models import JobRun
from storage.outbox import enqueue

log = logging.getLogger(__name__)
SCAN, PULL, OUTBOX, DIGEST = "baton.scan", "baton.pull", "baton.outbox", "baton.digest"
CADENCE, DIRECTORY, TRAIN = "baton.cadence", "baton.directory", "baton.train"
CRM = "baton.crm"


class Jobs:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        deliver: Callable[[], Any] | None = None,
        pull: Callable[[Session], Any] | None = None,
        resolve: Callable[[], Any] | None = None,
        instance: str | None = None,
        train_backtest: bool = True,
        crm_sync: Callable[[], str] | None = None,
    ) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self.deliver, self.pull, self.resolve = deliver, pull, resolve
        self.crm_sync = crm_sync  # one CRM pass (crm.cli.scheduled_pass): the line it returns is logged
        self.train_backtest = train_backtest  # store backtest figures with each model trained
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.tz = ZoneInfo(settings.rules.schedule.timezone)

    def _once(self, job_id: str, slot: datetime, work: Callable[[Session], str]) -> bool:
        """Run ``work`` unless another instance already ran this (job, slot). The ledger row is written
        in the same transaction as the work: a crash or failure rolls both back, so the slot stays free
        for a retry; on PostgreSQL a second instance waits on the first's row, then finds it taken."""

        def attempt(session: Session) -> bool:
            if not self._take(session, job_id, slot):
                return False
            outcome = work(session)
            run = session.get(JobRun, (job_id, slot))
            assert run is not None
            run.finished_at, run.outcome = self.clock(), outcome[:2000]
            log.info("%s %s: %s", job_id, slot.date().isoformat(), outcome)
            return True

        return self.db.run(attempt)

    def _daily_slot(self) -> tuple[datetime, datetime]:
        local = self.clock().astimezone(self.tz)
        return local, local.replace(hour=0, minute=0, second=0, microsecond=0)

    def scan_job(self) -> bool:
        """The daily scan, once per local day, over complete days: data up to yesterday."""
        local, slot = self._daily_slot()
        as_of = (local - timedelta(days=1)).date()

        def work(session: Session) -> str:
            result = scan(session, as_of=as_of, rules=self.settings.rules, clock=self.clock)
            data = result.data
            if data is not None and data.stale(self.settings.rules.health):
                log.warning("scan: %s", data.describe(self.settings.rules.health))
            through = data.through if data else None
            return f"as_of {as_of}: {len(result.raised)} raised, quiet {result.quiet}, data through {through}"

        self.train_job(slot, as_of)
        ran = self._once(SCAN, slot, work)
        if ran and self.deliver:
            self.deliver()
        return ran

    def train_job(self, slot: datetime, as_of: date) -> bool:
        """Before the day's scan: train when no model exists or it is a week older than the data, once
        across instances (the ledger); a failure is logged and the scan goes on with what is stored."""
        rules, clock, backtest = self.settings.rules, self.clock, self.train_backtest
        try:
            with self.db.session() as session:
                if not needs_training(session, as_of, rules):
                    return False
            return self._once(
                TRAIN, slot, lambda s: train_if_stale(s, as_of, rules, now=clock(), backtest=backtest)
            )
        except Exception:
            log.warning("%s failed; the scan uses the stored model", TRAIN, exc_info=True)
            return False

    def pull_job(self) -> bool:
        if self.pull is None:
            return False
        _, slot = self._daily_slot()
        pull = self.pull
        return self._once(PULL, slot, lambda session: str(pull(session)))

    def digest_job(self) -> bool:
        """The weekly digest: built and queued in the ledger's transaction, then delivered."""
        local, slot = self._daily_slot()
        as_of = local.date()

        def work(session: Session) -> str:
            report = build_digest(session, as_of, self.settings.rules)
            switches = [d["id"] for d in report.get("model", {}).get("switches", [])]
            decisions.announced(session, switches, self.clock())  # told once, in this digest
            row = enqueue(session, None, "digest", self.clock(), report=report)
            session.flush()
            enqueue(session, None, "digest_chart", self.clock(), digest_row=row.id)
            return f"digest as_of {as_of} queued"

        ran = self._once(DIGEST, slot, work)
        if ran and self.deliver:
            self.deliver()
        return ran

    def cadence_job(self) -> bool:
        """Today's touch and renewal reminders, queued with their ledger rows, then delivered. The
        csm_email mapping is refreshed first, so reminders reach the CSMs an accounts file names."""
        local, slot = self._daily_slot()
        self.directory_job()

        def work(session: Session) -> str:
            return str(reminders.queue(session, local.date(), self.settings.rules, self.clock()))

        ran = self._once(CADENCE, slot, work)
        if ran and self.deliver:
            self.deliver()
        return ran

    def directory_job(self) -> None:
        """csm_emails new since the last run (an ingest through the API) or stale: looked up, cached.
        A failure only delays the mapping; the jobs that read it go on."""
        if self.resolve is None:
            return
        try:
            log.info("%s: %s", DIRECTORY, self.resolve())
        except Exception:
            log.warning("%s failed; the cached mapping stays", DIRECTORY, exc_info=True)

    def catch_up(self) -> bool:
        """At start-up: for each daily job whose time today has passed and that no instance ran (the
        process was down at the time, which an in-memory job store cannot know), run it now."""
        local, _ = self._daily_slot()
        schedule = self.settings.rules.schedule
        ran = False
        for when, job in ((schedule.scan, self.scan_job), (schedule.cadence, self.cadence_job)):
            due = local.replace(
                hour=int(when.get("hour", 0)), minute=int(when.get("minute", 0)), second=0, microsecond=0
            )
            ran = (local >= due and job()) or ran
        return ran

    def _claim(self, job_id: str, slot: datetime) -> bool:
        """Take (job, slot) in a transaction of its own, for work that makes its own units of work and
        slow calls (a CRM pass must not hold SQLite's write lock while it waits on the CRM)."""

        return self.db.run(lambda session: self._take(session, job_id, slot))

    def _take(self, session: Session, job_id: str, slot: datetime) -> bool:
        """Write the ledger row for (job, slot); False when another instance has it (done or running)."""
        run = JobRun(job_id=job_id, scheduled_for=slot, instance=self.instance, started_at=self.clock())
        session.add(run)
        try:
            session.flush()
        except (IntegrityError, OperationalError):
            session.rollback()
            log.info("%s for %s already done or running elsewhere", job_id, slot.isoformat())
            return False
        return True

    def crm_job(self) -> bool:
        """The CRM pass, once per ``crm.poll_minutes`` slot across instances. The slot is claimed before
        the pass (which commits as it goes), so a pass that crashes midway is retried at the next slot,
        minutes later, not in this one; what it recorded stays recorded and is skipped by its ids."""
        if self.crm_sync is None:
            return False
        minutes = self.settings.rules.crm.poll_minutes
        now = self.clock()
        epoch = int(now.timestamp()) // 60
        slot = datetime.fromtimestamp((epoch - epoch % minutes) * 60, now.tzinfo)
        if not self._claim(CRM, slot):
            return False
        try:
            outcome = self.crm_sync()
        except Exception as exc:  # logged with the ledger row; the next slot tries again
            log.warning("%s failed", CRM, exc_info=True)
            outcome = f"failed: {exc}"
        with self.db.session() as session:
            run = session.get(JobRun, (CRM, slot))
            if run is not None:
                run.finished_at, run.outcome = self.clock(), outcome[:2000]
        log.info("%s %s: %s", CRM, slot.isoformat(), outcome)
        if self.deliver:
            self.deliver()
        return True

    def outbox_job(self) -> None:
        if self.deliver:
            self.deliver()


def build_scheduler(jobs: Jobs, settings: Settings) -> BackgroundScheduler:
    """Every job registered once, with a stable id, an explicit timezone, coalescing and a grace time."""
    rules = settings.rules.schedule
    sched = BackgroundScheduler(
        timezone=jobs.tz,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": rules.misfire_grace_seconds,
        },
    )
    cron: list[tuple[Callable[[], Any], dict[str, Any], str, str]] = [
        (jobs.scan_job, rules.scan, SCAN, "daily scan"),
        (jobs.digest_job, rules.digest, DIGEST, "weekly digest"),
        (jobs.cadence_job, rules.cadence, CADENCE, "cadence reminders"),
    ]
    if jobs.pull is not None:
        cron.append((jobs.pull_job, rules.pull, PULL, "signal pull"))
    for job, fields, job_id, name in cron:
        sched.add_job(
            job, CronTrigger(timezone=jobs.tz, **fields), id=job_id, name=name, replace_existing=True
        )
    sched.add_job(
        jobs.catch_up,
        "date",
        run_date=utcnow().astimezone(jobs.tz) + timedelta(seconds=5),  # a real timer: the real clock
        id="baton.catch_up",
        name="missed daily jobs catch-up",
        replace_existing=True,
    )
    if jobs.resolve is not None:
        sched.add_job(
            jobs.directory_job,
            IntervalTrigger(hours=1, timezone=jobs.tz),
            id=DIRECTORY,
            name="csm email lookups",
            replace_existing=True,
        )
    if jobs.crm_sync is not None:
        sched.add_job(
            jobs.crm_job,
            IntervalTrigger(minutes=settings.rules.crm.poll_minutes, timezone=jobs.tz),
            id=CRM,
            name="CRM pass (won deals, webhook deals, accounts)",
            replace_existing=True,
        )
    if jobs.deliver is not None:
        sched.add_job(
            jobs.outbox_job,
            IntervalTrigger(seconds=15, timezone=jobs.tz),
            id=OUTBOX,
            name="outbox drain",
            replace_existing=True,
        )
    return sched
