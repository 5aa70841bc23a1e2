"""The DM seam and the nudge ledger, domain side (SQLite and PostgreSQL): ``announce`` queues the
owner's DM with the deal's row; ``queue_nudges`` picks the deals unanswered for ``after`` once each,
even with two instances running the pass at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from crm import sync
from handoff import service
from handoff.service import Actor
from settings import ROOT, Rules
from storage import Database
from storage.models import CrmDeal, Outbox
from tests.clocks import FakeClock
from tests.crm.fakecrm import FakeHubSpot, seed_hubspot_deal
from tests.crm.test_sync import run, settings_for
from tests.handoff.test_checklist import valid_form

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def steps(db: Database) -> list[tuple[int, str]]:
    with db.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.action == sync.WON_DEAL_DM).order_by(Outbox.id))
        return [(r.payload["crm_deal"], r.payload["step"]) for r in rows]


def test_the_hook_queues_one_dm_per_new_deal_with_its_row(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot, name="A - Pro")
    seed_hubspot_deal(hubspot, name="B - Pro")
    clock = FakeClock(NOW)
    for _ in range(2):
        assert run(settings_for(hubspot), db, clock, on_won=sync.announce)[0] == 0
    with db.session() as s:
        ids = list(s.scalars(select(CrmDeal.id).order_by(CrmDeal.id)))
        assert all(d.announced_at == NOW for d in s.scalars(select(CrmDeal)))
    assert steps(db) == [(i, "dm") for i in ids]


def add_deal(db: Database, deal_id: str, *, announced: datetime | None) -> int:
    with db.session() as s:
        row = CrmDeal(crm="hubspot", deal_id=deal_id, deal={}, found_at=NOW, announced_at=announced)
        s.add(row)
        s.flush()
        return row.id


def test_only_deals_unanswered_long_enough_are_nudged_and_only_once(db: Database) -> None:
    due = add_deal(db, "1", announced=NOW - DAY)
    add_deal(db, "2", announced=NOW - DAY + timedelta(minutes=1))  # 23:59 ago: not yet
    add_deal(db, "3", announced=None)  # never announced (recorded without the bot): no nudge
    with db.session() as s:
        assert sync.queue_nudges(s, now=NOW, after=DAY) == 1
    with db.session() as s:
        assert sync.queue_nudges(s, now=NOW + DAY, after=DAY) == 1  # deal 2, now due; deal 1 is done
    with db.session() as s:
        assert sync.queue_nudges(s, now=NOW + 5 * DAY, after=DAY) == 0
        assert s.get(CrmDeal, due).nudged_at == NOW
    assert [step for _, step in steps(db)] == ["nudge", "lead", "nudge", "lead"]


def test_a_deal_with_a_handoff_is_never_nudged(db: Database) -> None:
    deal = add_deal(db, "1", announced=NOW - 2 * DAY)
    with db.session() as s:
        h = service.create(
            s,
            form=valid_form(),
            actor=Actor("UREP"),
            clock=FakeClock(NOW),
            rules=Rules.load(ROOT / "baton.yml"),
        )
        s.get(CrmDeal, deal).handoff_id = h.id
    with db.session() as s:
        assert sync.queue_nudges(s, now=NOW, after=DAY) == 0
    assert steps(db) == []


def test_two_passes_at_once_nudge_each_deal_once(db: Database) -> None:
    ids = [add_deal(db, str(i), announced=NOW - 2 * DAY) for i in range(3)]
    start, counts, errors = threading.Barrier(2), [], []

    def one() -> None:
        try:
            start.wait()
            with db.session() as s:
                counts.append(sync.queue_nudges(s, now=NOW, after=DAY))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and sum(counts) == 3
    assert sorted(steps(db)) == sorted((d, step) for d in ids for step in ("lead", "nudge"))


def test_app_py_crm_sync_queues_the_owners_dm(
    tmp_path: Any, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """By hand as on schedule: the DM is queued with the deal; without a Slack token it waits there."""
    import app

    seed_hubspot_deal(hubspot, modified=datetime.now(UTC).isoformat())
    url = f"sqlite:///{tmp_path / 'b.db'}"
    env = {"DATABASE_URL": url, "HUBSPOT_ACCESS_TOKEN": hubspot.token, "HUBSPOT_API_URL": hubspot.base_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "BATON_CONFIG", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    assert app.main(["crm", "sync"]) == 0
    assert app.main(["crm", "sync", "--dry-run"]) == 0
    db = Database(url)
    [(deal, step)] = steps(db)
    with db.session() as s:
        assert step == "dm" and s.get(CrmDeal, deal).announced_at is not None
