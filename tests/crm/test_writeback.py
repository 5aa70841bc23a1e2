"""The handoff written back into the fake CRMs through the outbox (SQLite and PostgreSQL): on submit,
edit and assign; the same note updated in place; no second note or task whatever the CRM answers
(429, 500, 401, and a 500 after the CRM did write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.delivery import Delivery
from bot.i18n import translator
from clock import local_day
from crm import writeback
from handoff import service
from handoff.crm_link import WRITEBACK
from handoff.service import Actor
from settings import Settings
from storage import Database
from storage.models import Account, CrmDeal, CrmWriteback, Outbox, SlackUserEmail
from tests.clocks import FakeClock
from tests.crm.fakecrm import FakeHubSpot, FakeSalesforce, HubSpotDeal, V, seed_hubspot_deal
from tests.crm.test_sync import settings_for
from tests.handoff.test_checklist import valid_form

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PERMALINK = "https://acme.slack.com/archives/C1/p1764550800000100"
CS = Actor("ULEAD", is_cs=True)


def baton_notes(hs: FakeHubSpot) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in hs.objects.get("notes", {}).items()
        if "[baton-handoff-" in str(v.get("hs_note_body"))
    }


def setup_deal(db: Database, crm: str, deal_id: str, company_id: str | None) -> None:
    """A won deal Baton took, and the account the CRM sync made for its company."""
    with db.session() as s:
        s.add(CrmDeal(crm=crm, deal_id=deal_id, company_id=company_id, deal={}, found_at=NOW))
        s.add(
            Account(
                name="Acme Corp", name_key="acme corp", external_id=company_id, created_at=NOW, updated_at=NOW
            )
        )
        s.add(SlackUserEmail(email="csm@example.com", user_id="UCSM", looked_up_at=NOW))


def linked(db: Database, hubspot: FakeHubSpot, deal: HubSpotDeal) -> tuple[Settings, FakeClock]:
    """Settings pointing at the fake HubSpot, a clock at NOW, and ``deal`` stored as a won deal."""
    setup_deal(db, "hubspot", deal.deal_id, deal.company_id)
    return settings_for(hubspot), FakeClock(NOW)


def submit(db: Database, settings: Settings, clock: FakeClock, **form: Any) -> int:
    """What the submit listener does: the handoff, its card and (now) its write-back, in one transaction;
    then the card is posted (its link is what the CRM note points to). The price makes it high touch,
    whose plan starts with a kickoff."""
    form = {"price_amount": Decimal(5000), **form}
    with db.session() as s:
        h = service.create(
            s,
            form=valid_form(account_name="Acme Corp", **form),
            actor=Actor("UREP"),
            clock=clock,
            rules=settings.rules,
        )
        service.queue_card(s, h, "C1", clock())
        hid = h.id
    with db.session() as s:
        service.record_post(s, handoff_id=hid, channel_id="C1", ts="1764550800.000100", permalink=PERMALINK)
        for row in s.scalars(select(Outbox).where(Outbox.handoff_id == hid, Outbox.action == "card")):
            row.state = "sent"
    return hid


def deliver(db: Database, settings: Settings, clock: FakeClock, *, rounds: int = 12) -> list[str | None]:
    """Drain the write-back rows as the outbox job would, moving time past each retry; the errors seen."""
    errors: list[str | None] = []
    d = Delivery(db, WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"), settings, clock)
    for _ in range(rounds):
        with db.session() as s:
            ids = list(
                s.scalars(select(Outbox.id).where(Outbox.action == WRITEBACK, Outbox.state == "pending"))
            )
        if not ids:
            break
        d.run(ids=ids)
        with db.session() as s:
            errors += [r.last_error for r in s.scalars(select(Outbox).where(Outbox.id.in_(ids)))]
        clock.advance(hours=2)
    return errors


def writeback_rows(db: Database) -> list[Outbox]:
    with db.session() as s:
        return list(s.scalars(select(Outbox).where(Outbox.action == WRITEBACK).order_by(Outbox.id)))


@pytest.fixture
def hs_deal(hubspot: FakeHubSpot) -> HubSpotDeal:
    hubspot.owners["88"] = "csm@example.com"
    return seed_hubspot_deal(hubspot)


def test_submit_writes_one_note_on_deal_and_company_the_csm_and_a_kickoff_task(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock, csm_user_id="UCSM", why_bought="Wants <SSO> & audit logs")

    assert deliver(db, settings, clock)[-1] is None
    assert [r.state for r in writeback_rows(db)] == ["sent"]
    ((note_id, note),) = baton_notes(hubspot).items()
    body = note["hs_note_body"]
    assert "Handoff: Acme Corp" in body and PERMALINK in body and f"[baton-handoff-{hid}]" in body
    assert "Why they bought: Wants &lt;SSO&gt; &amp; audit logs" in body  # readable text, escaped HTML
    assert "CSM: csm@example.com" in body
    assert (note_id, []) in hubspot.links[("deals", "notes")][hs_deal.deal_id]
    assert (note_id, []) in hubspot.links[("companies", "notes")][hs_deal.company_id]
    assert hubspot.objects["companies"][hs_deal.company_id]["hubspot_owner_id"] == "88"
    (task,) = hubspot.objects["tasks"].values()
    with db.session() as s:
        h = service.get(s, hid)
        days = dict(settings.rules.cadence.plans[h.touch_tier])["kickoff"]
        kickoff = local_day(h.created_at, settings.rules.schedule.timezone) + timedelta(days=days)
    assert task["hs_timestamp"].startswith(kickoff.isoformat())
    assert task["hubspot_owner_id"] == "88" and task["hs_task_status"] == "NOT_STARTED"
    assert f"Kickoff due: {kickoff.isoformat()}" in body
    writes = [p for p in hubspot.paths() if not p.startswith((f"/crm/objects/{V}", f"/crm/owners/{V}"))]
    assert writes == []  # only date-versioned paths


def test_an_edit_updates_the_same_note_and_task_in_place(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock, problem="Manual onboarding")
    deliver(db, settings, clock)
    (note_id,) = baton_notes(hubspot)
    with db.session() as s:
        h = service.get(s, hid)
        form = service.form_from(h)
        form.problem = "Onboarding takes a month"
        h, changed = service.update(
            s, handoff_id=hid, expected_revision=h.revision, form=form, actor=Actor("UREP"), clock=clock,
            rules=settings.rules,
        )  # fmt: skip
        assert changed == ["problem"]
        service.queue_change(s, h, clock(), "edited")
    deliver(db, settings, clock)

    assert list(baton_notes(hubspot)) == [note_id]
    assert "Problem to solve: Onboarding takes a month" in hubspot.objects["notes"][note_id]["hs_note_body"]
    assert len(hubspot.objects["tasks"]) == 1
    posts = [
        r
        for r in hubspot.requests
        if r.method == "POST" and r.path in (f"/crm/objects/{V}/notes", f"/crm/objects/{V}/tasks")
    ]
    assert len(posts) == 2
    assert any(
        r.method == "PATCH" and r.path == f"/crm/objects/{V}/notes/{note_id}" for r in hubspot.requests
    )


def test_assigning_the_csm_later_writes_the_owner_and_the_tasks_owner(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock)
    deliver(db, settings, clock)
    assert "hubspot_owner_id" not in hubspot.objects["companies"][hs_deal.company_id]
    with db.session() as s:
        h, changed, _ = service.assign(s, handoff_id=hid, csm_user_id="UCSM", actor=CS, clock=clock)
        assert changed
        service.queue_change(s, h, clock(), "assigned")
        service.queue_assigned_dm(s, h, "UCSM", CS.user_id, clock())
    deliver(db, settings, clock)

    assert hubspot.objects["companies"][hs_deal.company_id]["hubspot_owner_id"] == "88"
    (task,) = hubspot.objects["tasks"].values()
    assert task["hubspot_owner_id"] == "88"
    (note,) = baton_notes(hubspot).values()
    assert "Status: accepted by customer success" in note["hs_note_body"]


def test_changes_made_while_a_write_back_waits_share_it(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock)
    with db.session() as s:
        h = service.get(s, hid)
        service.accept(s, handoff_id=hid, actor=CS, clock=clock)
        service.queue_change(s, h, clock(), "accepted")
    assert len(writeback_rows(db)) == 1  # rendered when sent, so it carries the acceptance too


def test_a_second_write_back_waits_while_the_first_is_in_flight(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock)
    with db.session() as s:  # the first row is mid-send elsewhere (claimed, its lease running) ...
        first = s.scalars(select(Outbox).where(Outbox.action == WRITEBACK)).one()
        first.state, first.next_attempt_at = "in_flight", clock() + timedelta(seconds=60)
        h = service.get(s, hid)
        service.accept(s, handoff_id=hid, actor=CS, clock=clock)
        service.queue_change(s, h, clock(), "accepted")  # ... when an accept queues a second one
        second = s.scalars(select(Outbox).where(Outbox.action == WRITEBACK, Outbox.id != first.id)).one()
        second_id = second.id
    d = Delivery(db, WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/"), settings, clock)
    d.run(ids=[second_id])
    with db.session() as s:
        row = s.get(Outbox, second_id)
        assert row.state == "pending" and "in flight" in (row.last_error or "")
    assert baton_notes(hubspot) == {} and hubspot.objects.get("tasks", {}) == {}  # nothing created twice


def test_a_crm_answer_of_an_unexpected_shape_gives_the_row_up(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    submit(db, settings, clock)

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyError("id")  # as `r["id"]` on an answer without one

    monkeypatch.setattr(writeback, "send", broken)
    deliver(db, settings, clock, rounds=1)
    (row,) = writeback_rows(db)
    assert row.state == "pending" and "KeyError" in (row.last_error or "")  # not stuck in flight
    deliver(db, settings, clock, rounds=8)
    (row,) = writeback_rows(db)
    assert row.state == "dead"  # given up after its attempts, like any message Slack refuses


@pytest.mark.parametrize(
    "storm",
    ["429", "500", "401", "lost_answers"],
)
def test_a_storm_never_makes_a_second_note_or_task(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal, storm: str
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    notes, tasks = f"/crm/objects/{V}/notes", f"/crm/objects/{V}/tasks"
    if storm == "429":
        hubspot.rate_limit(notes, times=3, headers={"Retry-After": "2"})
        hubspot.rate_limit(tasks, times=3)
    elif storm == "500":
        for path in (notes, notes, tasks, tasks):
            hubspot.throttle.append((path, 500, {}, {"status": "error", "message": "internal"}))
    elif storm == "401":
        real, hubspot.token = hubspot.token, "rotated"
    else:  # HubSpot wrote, and the answer was lost: the next attempt must find what it wrote
        hubspot.lose += [("POST", notes, 500), ("POST", tasks, 502)]
    hid = submit(db, settings, clock, csm_user_id="UCSM")

    errors = deliver(db, settings, clock, rounds=2 if storm == "401" else 12)
    if storm == "401":
        assert "HUBSPOT_ACCESS_TOKEN" in (errors[-1] or "") and "15 minutes" in (errors[-1] or "")
        hubspot.token = real
        errors += deliver(db, settings, clock)
    assert errors[0] is not None and errors[-1] is None  # it failed, then went through
    assert len(baton_notes(hubspot)) == 1
    assert len(hubspot.objects["tasks"]) == 1
    with db.session() as s:
        kept = {
            r.kind: r.object_id for r in s.scalars(select(CrmWriteback).where(CrmWriteback.handoff_id == hid))
        }
    assert kept == {"note": next(iter(baton_notes(hubspot))), "task": next(iter(hubspot.objects["tasks"]))}


def test_a_note_deleted_in_the_crm_is_written_again(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    hid = submit(db, settings, clock)
    deliver(db, settings, clock)
    (old,) = baton_notes(hubspot)
    del hubspot.objects["notes"][old]
    with db.session() as s:
        service.queue_change(s, service.get(s, hid), clock())
    deliver(db, settings, clock)
    (new,) = baton_notes(hubspot)
    assert new != old


def test_a_handoff_no_crm_deal_names_queues_no_write_back(db: Database, hubspot: FakeHubSpot) -> None:
    settings, clock = settings_for(hubspot), FakeClock(NOW)
    submit(db, settings, clock)
    assert writeback_rows(db) == []


def test_a_crm_no_longer_configured_drops_the_write_back_quietly(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    clock = FakeClock(NOW)
    setup_deal(db, "hubspot", hs_deal.deal_id, hs_deal.company_id)
    submit(db, settings_for(hubspot), clock)
    deliver(db, settings_for(), clock)
    assert [r.state for r in writeback_rows(db)] == ["sent"] and baton_notes(hubspot) == {}


def test_the_write_back_waits_for_the_cards_link_then_goes_without_it(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = linked(db, hubspot, hs_deal)
    with db.session() as s:
        h = service.create(s, form=valid_form(account_name="Acme Corp"), actor=Actor("UREP"), clock=clock,
                           rules=settings.rules)  # fmt: skip
        service.queue_card(s, h, "C1", clock())
    (row,) = writeback_rows(db)
    with pytest.raises(writeback.Later, match="card"):
        writeback.send(
            Env(db, settings, clock),
            row.handoff_id,
            row.payload,
            created=row.created_at,
            words=translator("en"),
        )
    clock.advance(minutes=11)
    writeback.send(
        Env(db, settings, clock), row.handoff_id, row.payload, created=row.created_at, words=translator("en")
    )
    (note,) = baton_notes(hubspot).values()
    assert "Slack card" not in note["hs_note_body"]


class Env:
    def __init__(self, db: Database, settings: Settings, clock: FakeClock) -> None:
        self.db, self.settings, self.clock = db, settings, clock


def test_the_note_reads_in_the_teams_language(
    db: Database, hubspot: FakeHubSpot, hs_deal: HubSpotDeal
) -> None:
    settings, clock = settings_for(hubspot, BATON_LOCALE="ja"), FakeClock(NOW)
    setup_deal(db, "hubspot", hs_deal.deal_id, hs_deal.company_id)
    submit(db, settings, clock, csm_user_id="UCSM")
    deliver(db, settings, clock)
    (note,) = baton_notes(hubspot).values()
    assert (
        "引き継ぎ：Acme Corp" in note["hs_note_body"] and "担当CSM：csm@example.com" in note["hs_note_body"]
    )
    assert "プラン：Pro" in note["hs_note_body"]  # the checklist's lines take a full-width colon too
    (task,) = hubspot.objects["tasks"].values()
    assert task["hs_task_subject"].startswith("キックオフ：Acme Corp")


# --- Salesforce --------------------------------------------------------------------------------------
def sf_setup(db: Database, sf: FakeSalesforce) -> tuple[str, str, str]:
    account = sf.add_sobject("Account", {"Name": "Acme Corp"})
    opp = sf.add_sobject("Opportunity", {"Name": "Acme Corp - Pro", "AccountId": account})
    user = sf.add_sobject("User", {"Email": "csm@example.com", "IsActive": True})
    setup_deal(db, "salesforce", opp, account)
    return account, opp, user


def test_salesforce_notes_on_opportunity_and_account_the_owner_and_a_task(
    db: Database, salesforce: FakeSalesforce
) -> None:
    settings, clock = settings_for(sf=salesforce), FakeClock(NOW)
    account, opp, user = sf_setup(db, salesforce)
    salesforce.lose.append(("POST", f"/services/data/{salesforce.version}/sobjects/Note", 500))
    hid = submit(db, settings, clock, csm_user_id="UCSM")
    assert deliver(db, settings, clock)[-1] is None

    notes = salesforce.sobjects["Note"]
    assert sorted(n["ParentId"] for n in notes.values()) == sorted([opp, account])  # one each, none twice
    for n in notes.values():
        assert n["Title"].endswith(f"[baton-handoff-{hid}]") and PERMALINK in n["Body"]
    assert salesforce.sobjects["Account"][account]["OwnerId"] == user
    (task,) = salesforce.sobjects["Task"].values()
    assert task["WhatId"] == opp and task["OwnerId"] == user and task["Status"] == "Not Started"
    assert task["ActivityDate"] > NOW.date().isoformat()

    with db.session() as s:
        h = service.get(s, hid)
        form = service.form_from(h)
        form.concerns = "Data residency"
        h, _ = service.update(s, handoff_id=hid, expected_revision=h.revision, form=form, actor=Actor("UREP"),
                              clock=clock, rules=settings.rules)  # fmt: skip
        service.queue_change(s, h, clock())
    deliver(db, settings, clock)
    assert len(salesforce.sobjects["Note"]) == 2 and len(salesforce.sobjects["Task"]) == 1
    assert all("Data residency" in n["Body"] for n in salesforce.sobjects["Note"].values())
