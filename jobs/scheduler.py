"""APScheduler 3 runs Baton's jobs in each instance; a run ledger makes each scheduled run happen once.

APScheduler 3 cannot share a job store between instances, so every instance schedules the same jobs
in memory and the job bodies coordinate through the database: the first instance to insert the
(job id, slot) row into ``job_runs`` runs the job, the others see the unique key taken and skip.
The outbox drain needs no ledger: its rows are claimed with SKIP LOCKED."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError

from alerts.service import scan
from clock import Clock
from settings import Settings
from storage import Database
from storage.models import JobRun

log = logging.getLogger(__name__)
SCAN, PULL, OUTBOX = "baton.scan", "baton.pull", "baton.outbox"


class Jobs:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        deliver: Callable[[], Any] | None = None,
        pull: Callable[[], Any] | None = None,
        instance: str | None = None,
    ) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self.deliver, self.pull = deliver, pull
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.tz = ZoneInfo(settings.rules.schedule.timezone)

    def claim(self, job_id: str, slot: datetime) -> bool:
        """True for exactly one caller per (job, slot), across every instance on this database."""
        try:
            with self.db.session() as s:
                s.add(
                    JobRun(job_id=job_id, scheduled_for=slot, instance=self.instance, started_at=self.clock())
                )
            return True
        except IntegrityError:
            log.info("%s for %s already taken by another instance", job_id, slot.isoformat())
            return False

    def _finish(self, job_id: str, slot: datetime, outcome: str) -> None:
        with self.db.session() as s:
            run = s.get(JobRun, (job_id, slot))
            if run is not None:
                run.finished_at, run.outcome = self.clock(), outcome[:2000]

    def _daily_slot(self) -> tuple[datetime, datetime]:
        local = self.clock().astimezone(self.tz)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local, day

    def scan_job(self) -> bool:
        """The daily scan, once per local day, over complete days: data up to yesterday."""
        local, slot = self._daily_slot()
        if not self.claim(SCAN, slot):
            return False
        as_of = (local - timedelta(days=1)).date()
        try:
            with self.db.session() as s:
                result = scan(s, as_of=as_of, rules=self.settings.rules, clock=self.clock)
            outcome = f"as_of {as_of}: {len(result.raised)} raised, quiet {result.quiet}"
            if self.deliver:
                self.deliver()
        except Exception as exc:
            self._finish(SCAN, slot, f"failed: {exc!r}")
            raise
        self._finish(SCAN, slot, outcome)
        log.info("scan %s", outcome)
        return True

    def pull_job(self) -> bool:
        _, slot = self._daily_slot()
        if self.pull is None or not self.claim(PULL, slot):
            return False
        try:
            outcome = str(self.pull())
        except Exception as exc:
            self._finish(PULL, slot, f"failed: {exc!r}")
            raise
        self._finish(PULL, slot, outcome)
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
    sched.add_job(
        jobs.scan_job,
        CronTrigger(timezone=jobs.tz, **rules.scan),
        id=SCAN,
        name="daily scan",
        replace_existing=True,
    )
    if jobs.pull is not None:
        sched.add_job(
            jobs.pull_job,
            CronTrigger(timezone=jobs.tz, **rules.pull),
            id=PULL,
            name="signal pull",
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
