"""One Baton instance in its own process, for the tests that run two on one database: its own engine
and pool, its own outbox drain and its own copy of the scheduled jobs, as a second container has.

``python -m tests.instance DB_URL SLACK_API GO_FILE NAME START_ISO`` says it is ready, waits for
GO_FILE (so two start together), then runs the daily scan, the cadence reminders and the weekly
digest while draining the outbox, and prints what it did as one JSON line. Its clock starts at
START_ISO and runs five times faster than the wall clock, so the outbox's short retries come due
within the test."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from slack_sdk import WebClient

from bot.delivery import Delivery, pending_count
from jobs.scheduler import Jobs
from settings import Settings
from storage import Database

TOKEN = "xoxb-test"
CHANNELS = {"handoff_channel": "CHANDOFF1", "alert_channel": "CALERTS01", "digest_channel": "CDIGEST01"}
SPEED = 5  # the outbox lease (60 s) is then 12 s of wall time: longer than any post under load


def main(argv: list[str]) -> int:
    url, api, go, name, start_iso = argv
    start = datetime.fromisoformat(start_iso)
    settings = replace(Settings.from_env({}), slack_bot_token=TOKEN, slack_api_url=api, **CHANNELS)
    db = Database(url)
    db.ping()  # connected, imports done: ready
    Path(f"{go}.{name}.ready").touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.002)
    t0 = time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=(time.monotonic() - t0) * SPEED)

    delivery = Delivery(db, WebClient(token=TOKEN, base_url=api), settings, clock)
    sent: list[int] = []  # per drain; list.append is atomic across the two threads that drain

    def deliver() -> None:
        sent.append(delivery.run(limit=10).sent)

    jobs = Jobs(db, settings, clock, deliver=deliver, instance=name, train_backtest=False)
    ran: dict[str, bool] = {}

    took: dict[str, float] = {}

    def scheduled() -> None:
        for name, job in (
            ("scan", jobs.scan_job),
            ("cadence", jobs.cadence_job),
            ("digest", jobs.digest_job),
        ):
            t = time.monotonic()
            ran[name] = job()
            took[name] = round(time.monotonic() - t, 2)

    job_thread = threading.Thread(target=scheduled, name="jobs")
    job_thread.start()
    while job_thread.is_alive() or pending_count(db):  # the outbox job, every 0.05 s here
        deliver()
        if time.monotonic() - t0 > 45:
            break
        time.sleep(0.05)
    job_thread.join(30)
    print(
        json.dumps(
            {
                "name": name,
                "ran": ran,
                "sent": sum(sent),
                "seconds": took | {"all": round(time.monotonic() - t0, 2)},
            }
        ),
        flush=True,
    )
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
