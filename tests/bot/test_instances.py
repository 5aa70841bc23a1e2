"""Two Baton instances on one database, each in its own process with its own pool: both drain the same
outbox and both run the same scheduled jobs at the same moment. Each message reaches Slack once and
each job runs once (the ledger), on PostgreSQL and on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from slack_sdk import WebClient
from sqlalchemy import func, select

from alerts.rules import CHURN, UPSELL
from bot.delivery import Delivery
from handoff import service as handoffs
from handoff.service import Actor
from jobs.scheduler import CADENCE, DIGEST, SCAN
from settings import Settings
from storage import Database
from storage.models import Alert, JobRun, Outbox
from storage.outbox import enqueue
from tests.alerts.factory import accounts, daily
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP
from tests.clocks import FakeClock
from tests.fakeslack import FakeSlack
from tests.handoff.test_checklist import valid_form
from tests.instance import CHANNELS

ROOT = Path(__file__).resolve().parents[2]
NOTICES, HANDOFFS = 40, 8


def _queue_work(db: Database, settings: Settings, start: FakeClock) -> None:
    """Signals for the scan to raise a churn risk and an upsell on; handoffs submitted six days ago
    (their cards queued now, their kickoffs due today: the cadence job's reminders); notices."""
    accounts(db, ("DROP", 50, "Pro"), ("FULL", 20, "Pro"))
    daily(db, "DROP", "active_users", lambda n: 40 if n >= 7 else 12)
    daily(db, "FULL", "active_users", lambda n: 20)
    earlier = FakeClock(start() - timedelta(days=6))
    cs = Actor(CS_USER, is_cs=True)
    with db.session() as s:
        for n in range(HANDOFFS):
            form = valid_form(account_name=f"Twin {n}")
            h = handoffs.create(s, form=form, actor=Actor(REP), clock=earlier, rules=settings.rules)
            if n % 2:
                handoffs.assign(s, handoff_id=h.id, csm_user_id=f"UCSM{n:04d}", actor=cs, clock=earlier)
            handoffs.queue_card(s, h, HANDOFF_CHANNEL, start())
        for n in range(NOTICES):
            enqueue(s, None, "notice", start(), user=f"UNOTE{n:04d}", text=f"Notice {n}.")


def _run_two(db: Database, slack: FakeSlack, start: FakeClock, tmp_path: Path) -> list[dict]:
    go = tmp_path / "go"
    argv = [sys.executable, "-m", "tests.instance", db.url, slack.base_url, str(go)]
    procs = [
        subprocess.Popen(
            [*argv, name, start().isoformat()],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("baton-a", "baton-b")
    ]
    try:
        ready = [Path(f"{go}.{name}.ready") for name in ("baton-a", "baton-b")]
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "not started"
            time.sleep(0.01)
        go.touch()  # both are up and connected: they start together
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def test_two_instances_send_each_message_once_and_run_each_job_once(
    db: Database, slack: FakeSlack, settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, **CHANNELS)
    start = FakeClock()
    _queue_work(db, settings, start)
    reports = _run_two(db, slack, start, tmp_path)

    # each scheduled job: run by exactly one instance, and the ledger names that one
    for job, key in (("scan", SCAN), ("cadence", CADENCE), ("digest", DIGEST)):
        winners = [r["name"] for r in reports if r["ran"][job]]
        assert len(winners) == 1, (job, reports)
        with db.session() as s:
            runs = s.scalars(select(JobRun).where(JobRun.job_id == key)).all()
        assert [(r.instance, r.outcome is not None) for r in runs] == [(winners[0], True)]
    with db.session() as s:
        assert sorted(s.scalars(select(Alert.kind))) == sorted([CHURN, UPSELL])  # raised once
        by_action = dict(s.execute(select(Outbox.action, func.count()).group_by(Outbox.action)).all())
        items = [
            (item["account_id"], item["stage"], item["due"])
            for p in s.scalars(select(Outbox.payload).where(Outbox.action == "reminders"))
            for item in p["reminders"]
        ]
    assert by_action["post"] == 2 and by_action["digest"] == by_action["digest_chart"] == 1
    assert by_action["card"] == HANDOFFS and by_action["notice"] == NOTICES
    assert items and len(items) == len(set(items))  # each reminder in one message only

    # what the two drains left (a retry not yet due when they stopped) goes out on a later drain
    later = FakeClock(start() + timedelta(hours=1))
    client = WebClient(token=slack.token, base_url=slack.base_url)
    leftovers = 0
    for _ in range(10):
        sent = Delivery(db, client, settings, later).run(limit=500).sent
        if not sent:
            break
        leftovers += sent
        later.advance(minutes=1)
    with db.session() as s:
        rows = dict(s.execute(select(Outbox.id, Outbox.action).where(Outbox.state == "sent")).all())
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.state != "sent")) == 0
    msgs = [m for ms in slack.messages.values() for m in ms] + [
        m for ms in slack.replies.values() for m in ms
    ]
    landed = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id") for m in msgs)
    posted = {i for i, action in rows.items() if action != "digest_chart"}
    assert {i: landed[i] for i in posted} == dict.fromkeys(posted, 1)  # none lost, none doubled
    assert set(landed) == posted
    assert len([c for c in slack.of("files.completeUploadExternal") if "_failed" not in c.args]) == 1
    # each row finished once, by whichever drain held its claim: no drain sent one another had
    assert sum(r["sent"] for r in reports) + leftovers == len(rows), reports
