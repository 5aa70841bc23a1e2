"""A won deal, end to end through real HTTP: the fake HubSpot's deal is taken by the scheduled pass,
the owner gets one "Start handoff" DM (or the sales lead does, when Slack does not know the owner),
the button opens the modal prefilled from the stored deal, and the submission creates the handoff,
linked to the deal with its CRM write-back queued. Unanswered, the owner is nudged and the lead told,
once. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.delivery import Delivery
from crm import inbox
from crm.cli import scheduled_pass, sources
from crm.sync import WON_DEAL_DM, announce, queue_nudges
from handoff import service
from handoff.crm_link import WRITEBACK
from handoff.service import Actor
from settings import Settings
from storage import Database
from storage.models import CrmDeal, Handoff, Outbox
from tests.bot.conftest import HANDOFF_CHANNEL, REP, Baton, card_action
from tests.crm.fakecrm import FakeHubSpot, seed_hubspot_deal
from tests.fakeslack import FakeSlack
from tests.handoff.test_checklist import valid_form

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
REP_EMAIL = "rep@example.com"
RATE_LIMITED = (429, {"Retry-After": "3"}, {"ok": False, "error": "ratelimited"})


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(slack: FakeSlack, settings: Settings, hubspot: FakeHubSpot) -> Settings:
    """The bot's test settings with HubSpot on (the fake)."""
    return replace(settings, hubspot_access_token=hubspot.token, hubspot_api_url=hubspot.base_url)


def crm_pass(baton: Baton, settings: Settings) -> str:
    """What the scheduled job runs (webhook inbox, poll, nudges), with the bot's hook, then the drain."""
    line = scheduled_pass(
        settings,
        baton.db,
        clock=baton.clock,
        on_won=announce,
        crms=sources(settings, sleep=lambda _: None),
        sleep=lambda _: None,
    )
    deliver(baton, settings)
    return line


def won(baton: Baton, settings: Settings, hubspot: FakeHubSpot, **deal: Any) -> str:
    """A deal the rep (a Slack user by email) won, taken by one scheduled pass: its summary line."""
    baton.clock.now = NOW
    baton.slack.emails[REP_EMAIL] = REP
    seed_hubspot_deal(hubspot, owner_email=REP_EMAIL, **deal)
    return crm_pass(baton, settings)


def deliver(baton: Baton, settings: Settings) -> None:
    client = WebClient(token=baton.slack.token, base_url=baton.slack.base_url)
    Delivery(baton.db, client, settings, baton.clock).run()


def posts_to(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [c.args for c in slack.of("chat.postMessage") if c.args.get("channel") == channel]


def dm_ts(db: Any, crm_deal_id: int) -> str | None:
    with db.session() as s:
        row = s.get(CrmDeal, crm_deal_id)
        return row.dm_ts if row is not None else None


def start_button(post: dict[str, Any]) -> dict[str, Any]:
    blocks = post["blocks"]
    post = {**post, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks}
    return card_action(post, "crm_start_handoff")


def the_deal(db: Database) -> CrmDeal:
    with db.session() as s:
        [row] = s.scalars(select(CrmDeal)).all()
        s.expunge(row)
        return row


def outbox_rows(db: Database, action: str) -> list[Outbox]:
    with db.session() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.action == action).order_by(Outbox.id)))
        for r in rows:
            s.expunge(r)
        return rows


def test_a_won_deal_dms_its_owner_once_even_when_seen_again(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    baton.clock.now = NOW
    baton.slack.emails[REP_EMAIL] = REP
    seeded = seed_hubspot_deal(hubspot, owner_email=REP_EMAIL)
    line = crm_pass(baton, settings)
    assert "hubspot: 1 new" in line
    [dm] = posts_to(baton.slack, REP)
    assert "Acme Corp - Pro" in dm["text"] and "Congratulations" in dm["text"]
    assert start_button(dm)["value"] == str(the_deal(baton.db).id)
    # HubSpot delivers the webhook twice, then the next poll reads the deal again
    with baton.db.session() as s:
        inbox.receive(s, "hubspot", [seeded.deal_id, seeded.deal_id], baton.clock())
    baton.clock.advance(minutes=15)
    line = crm_pass(baton, settings)
    assert "1 seen before" in line
    assert len(posts_to(baton.slack, REP)) == 1
    assert len(outbox_rows(baton.db, WON_DEAL_DM)) == 1


def test_an_owner_without_a_slack_user_goes_to_the_handoff_channel_saying_so(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    baton.clock.now = NOW
    seed_hubspot_deal(hubspot, owner_email="gone@example.com")  # Slack knows no such user
    crm_pass(baton, settings)
    assert [c.args["email"] for c in baton.slack.of("users.lookupByEmail")] == ["gone@example.com"]
    [post] = posts_to(baton.slack, HANDOFF_CHANNEL)
    assert "gone@example.com" in post["text"] and "no Slack account" in post["text"]
    assert start_button(post)["value"] == str(the_deal(baton.db).id)
    assert [r.state for r in outbox_rows(baton.db, WON_DEAL_DM)] == ["sent"]


def test_the_sales_lead_setting_takes_the_ownerless_deal(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    baton.clock.now = NOW
    seed_hubspot_deal(hubspot, owner_email="gone@example.com")
    lead = replace(
        settings, rules=replace(settings.rules, crm=replace(settings.rules.crm, sales_lead="ULEAD01"))
    )
    crm_pass(baton, lead)
    assert posts_to(baton.slack, HANDOFF_CHANNEL) == []
    [post] = posts_to(baton.slack, "ULEAD01")
    assert "gone@example.com" in post["text"]


def test_the_button_opens_the_modal_prefilled_and_the_submission_links_the_deal(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    won(baton, settings, hubspot)
    [dm] = posts_to(baton.slack, REP)
    deal = the_deal(baton.db)
    api_calls = len(hubspot.requests)
    assert baton.click(start_button(dm), REP, channel="DREP0001").status_code == 200
    [opened] = baton.slack.wait_for("views.open")
    assert len(hubspot.requests) == api_calls  # opened from the stored deal: no CRM call
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    initial = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert initial["account_name"]["initial_value"] == "Acme Corp"
    assert initial["plan"]["initial_value"] == "Pro plan"
    assert initial["seats"]["initial_value"] == "50"
    assert initial["currency"]["initial_option"]["value"] == "JPY"
    assert initial["billing_period"]["initial_option"]["value"] == "monthly"
    assert initial["price_amount"]["initial_value"] == "120000"
    assert initial["contract_start"]["initial_date"] == "2026-11-28"
    assert initial["renewal_date"]["initial_date"] > "2026-11-28"
    assert "SSO add-on" in initial["addons"]["initial_value"]
    assert "Taro Yamada" in initial["decision_maker"]["initial_value"]
    assert "Hanako Sato" in initial["stakeholders_external"]["initial_value"]
    assert "January" in initial["discussion"]["initial_value"]
    assert initial["handed_off_by"]["initial_user"] == REP
    assert "initial_value" not in initial["problem"]  # what a deal cannot say is left to the rep
    assert view["callback_id"] == "handoff_crm"
    assert json.loads(view["private_metadata"])["d"] == deal.id

    # the rep names the account as CS knows it: a new account, which no CRM company id links to the deal
    values = {"problem": "Cut first-response time in half.", "account_name": "Acme KK"}
    answer = baton.submit(view, values, user=REP)
    assert answer.status_code == 200 and "errors" not in (answer.text or "")
    baton.wait_idle()
    with baton.db.session() as s:
        [h] = s.scalars(select(Handoff)).all()
        assert s.get(CrmDeal, deal.id).handoff_id == h.id
        hid = h.id
    [writeback] = outbox_rows(baton.db, WRITEBACK)
    assert writeback.handoff_id == hid and writeback.payload["deal_id"] == deal.deal_id
    assert [p for p in posts_to(baton.slack, HANDOFF_CHANNEL) if "Acme KK" in (p.get("text") or "")]

    # the DM itself now says so, with the card's link and no button left to click
    deliver(baton, settings)
    [edit] = [c.args for c in baton.slack.of("chat.update") if c.args.get("ts") == dm_ts(baton.db, deal.id)]
    edited = edit["blocks"] if isinstance(edit["blocks"], list) else json.loads(edit["blocks"])
    assert "Handoff started" in edit["text"] and not [b for b in edited if b["type"] == "actions"]
    assert edit["channel"].startswith("D")  # the owner's IM, where the DM is

    # the button again: the handoff is already started, said privately; no second modal
    baton.click(start_button(dm), REP, channel="DREP0001")
    [reply] = baton.slack.wait_responses(1)
    assert "already started" in reply["text"]
    assert len(baton.slack.of("views.open")) == 1


def test_a_second_submission_from_the_same_deal_is_refused_and_saves_nothing(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    won(baton, settings, hubspot)
    [dm] = posts_to(baton.slack, REP)
    baton.click(start_button(dm), REP, channel="DREP0001")
    baton.click(start_button(dm), "ULEAD01", channel=HANDOFF_CHANNEL)  # two modals open at once
    first, second = (
        json.loads(c.args["view"]) if isinstance(c.args["view"], str) else c.args["view"]
        for c in baton.slack.wait_for("views.open", 2)
    )
    assert baton.submit(first, {"problem": "Faster answers."}, user=REP).status_code == 200
    baton.wait_idle()
    other = baton.submit(
        {**second, "id": "VOTHER"}, {"problem": "x", "account_name": "Acme KK"}, user="ULEAD01"
    )
    assert "someone already started" in other.json()["errors"]["account_name"].lower()
    with baton.db.session() as s:
        assert len(s.scalars(select(Handoff)).all()) == 1


def test_unanswered_the_owner_is_nudged_once_and_the_lead_told_once(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    won(baton, settings, hubspot)
    hours = settings.rules.crm.nudge_hours
    baton.clock.advance(hours=hours - 1)
    with baton.db.session() as s:
        assert queue_nudges(s, now=baton.clock(), after=timedelta(hours=settings.rules.crm.nudge_hours)) == 0
    baton.clock.advance(hours=1)
    line = crm_pass(baton, settings)
    assert "1 unanswered won deal(s) nudged" in line
    nudge = posts_to(baton.slack, REP)[-1]
    assert len(posts_to(baton.slack, REP)) == 2 and "not been started" in nudge["text"]
    assert start_button(nudge)
    [lead] = posts_to(baton.slack, HANDOFF_CHANNEL)
    assert f"<@{REP}>" in lead["text"] and "reminded once" in lead["text"]
    baton.clock.advance(hours=hours * 3)
    crm_pass(baton, settings)
    assert len(posts_to(baton.slack, REP)) == 2 and len(posts_to(baton.slack, HANDOFF_CHANNEL)) == 1
    assert the_deal(baton.db).nudged_at is not None


def test_a_handoff_started_meanwhile_drops_the_nudge(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    won(baton, settings, hubspot)
    baton.clock.advance(hours=settings.rules.crm.nudge_hours)
    with baton.db.session() as s:
        assert queue_nudges(s, now=baton.clock(), after=timedelta(hours=settings.rules.crm.nudge_hours)) == 1
        form = valid_form(account_name="Acme Corp")
        h = service.create(s, form=form, actor=Actor(REP), clock=baton.clock, rules=settings.rules)
        s.get(CrmDeal, the_deal(baton.db).id).handoff_id = h.id
    deliver(baton, settings)
    assert len(posts_to(baton.slack, REP)) == 1 and posts_to(baton.slack, HANDOFF_CHANNEL) == []
    assert {r.state for r in outbox_rows(baton.db, WON_DEAL_DM)} == {"sent"}


def test_a_rate_limited_dm_is_retried_and_sent_once(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    baton.clock.now = NOW
    baton.slack.emails[REP_EMAIL] = REP
    baton.slack.fail["chat.postMessage"] = [RATE_LIMITED]
    seed_hubspot_deal(hubspot, owner_email=REP_EMAIL)
    crm_pass(baton, settings)
    [row] = outbox_rows(baton.db, WON_DEAL_DM)
    assert row.state == "pending" and "rate limited" in (row.last_error or "")
    deliver(baton, settings)  # not due yet: Retry-After is honoured
    assert len(baton.slack.of("chat.postMessage")) == 1
    baton.clock.advance(seconds=3)
    deliver(baton, settings)
    baton.clock.advance(minutes=5)
    deliver(baton, settings)
    assert len(baton.slack.messages.get("DREP0001", [])) == 1
    [row] = outbox_rows(baton.db, WON_DEAL_DM)
    assert row.state == "sent"
    assert len(baton.slack.of("users.lookupByEmail")) == 1  # the owner's answer is cached for the retry


def test_the_japanese_dm(baton: Baton, settings: Settings, hubspot: FakeHubSpot) -> None:
    baton.clock.now = NOW
    baton.slack.emails[REP_EMAIL] = REP
    baton.slack.locales[REP] = "ja-JP"
    seed_hubspot_deal(hubspot, name="<!channel> 株式会社アクメ - Pro", owner_email=REP_EMAIL)
    crm_pass(baton, settings)
    [dm] = posts_to(baton.slack, REP)
    assert "受注、おめでとうございます" in dm["text"]
    assert "&lt;!channel&gt;" in dm["text"] and "<!channel>" not in dm["text"]
    blocks = json.loads(dm["blocks"]) if isinstance(dm["blocks"], str) else dm["blocks"]
    assert blocks[-1]["elements"][0]["text"]["text"] == "引き継ぎを始める"
    assert "&lt;!channel&gt;" in blocks[0]["text"]["text"]


def test_a_retry_goes_where_the_first_attempt_went(
    baton: Baton, settings: Settings, hubspot: FakeHubSpot
) -> None:
    """The channel post's answer is lost; the owner joins Slack meanwhile. The retry still looks in
    the handoff channel (the miss is cached for a day), finds its post there, and sends nothing new."""
    baton.clock.now = NOW
    baton.slack.drop_answer["chat.postMessage"] = 1
    seed_hubspot_deal(hubspot, owner_email="late@example.com")
    crm_pass(baton, settings)
    baton.slack.emails["late@example.com"] = "ULATE001"
    baton.clock.advance(minutes=2)
    deliver(baton, settings)
    assert len(baton.slack.messages[HANDOFF_CHANNEL]) == 1
    assert posts_to(baton.slack, "ULATE001") == []
    [row] = outbox_rows(baton.db, WON_DEAL_DM)
    assert row.state == "sent"
