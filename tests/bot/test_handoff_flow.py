"""The handoff as a user lives it, through the real HTTP endpoint and the fake Slack API."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from storage.models import Handoff, HandoffEvent
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP, VALID, Baton


def open_modal(baton: Baton, text: str = "Acme Corp", user: str = REP) -> dict:
    n = len(baton.slack.of("views.open"))
    resp = baton.command(text, user=user)
    assert resp.status_code == 200
    return baton.slack.wait_for("views.open", n + 1)[-1].args["view"]


def create_handoff(baton: Baton, text: str = "Acme Corp", **values) -> dict:
    """Submit a valid handoff; returns the card once it is posted and its ts stored."""
    n = len(baton.slack.of("chat.getPermalink"))
    view = open_modal(baton, text)
    resp = baton.submit(view, {**VALID, **values})
    assert resp.status_code == 200 and resp.content in (b"", b"{}"), resp.text
    baton.slack.wait_for("chat.getPermalink", n + 1)
    baton.wait_idle()
    return [c for c in baton.slack.of("chat.postMessage") if c.args["channel"] == HANDOFF_CHANNEL][-1].args


def test_slash_command_opens_the_prefilled_modal_within_the_ack_window(baton: Baton) -> None:
    started = time.monotonic()
    resp = baton.command("Acme Corp")
    assert resp.status_code == 200
    call = baton.slack.wait_for("views.open")[0]
    assert call.at - started < 3.0, "views.open must happen while the trigger_id is valid"
    view = call.args["view"]
    assert call.args["trigger_id"].startswith("trig.")
    account = next(b for b in view["blocks"] if b.get("block_id") == "account_name")
    assert account["element"]["initial_value"] == "Acme Corp"
    handed = next(b for b in view["blocks"] if b.get("block_id") == "handed_off_by")
    assert handed["element"]["initial_user"] == REP


def test_valid_submission_is_stored_and_posted_as_a_card(baton: Baton) -> None:
    post = create_handoff(baton)
    nudge = baton.slack.wait_for("chat.postMessage", 2)[1].args  # sent after the card's ts is stored
    assert nudge["channel"] == REP and "missing" in nudge["text"]
    assert post["channel"] == HANDOFF_CHANNEL
    text = str(post["blocks"])
    assert "Acme Corp" in text and "¥800,000" in text and "ARR ¥9,600,000" in text
    # why bought, problem, success criteria, contract and term are answered; seven items are not
    assert "Checklist 5/12 items" in text and "Missing: Options / add-ons" in text
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert h.message_ts and h.channel_id == HANDOFF_CHANNEL and h.permalink
        assert h.touch_tier == "high" and h.touch_tier_suggested == "high"
        kinds = s.scalars(select(HandoffEvent.kind)).all()
    assert kinds == ["created"]


def test_bad_fields_get_inline_errors_and_nothing_is_stored(baton: Baton) -> None:
    view = open_modal(baton)
    resp = baton.submit(
        view,
        {
            **VALID,
            "seats": 0,
            "price_amount": "-5",
            "renewal_date": "2026-11-01",
            "stakeholders_external": "Hanako | CFO | not-an-email",
            "plan": None,
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"seats", "price_amount", "renewal_date", "stakeholders_external", "plan"}
    assert "Line 1" in body["errors"]["stakeholders_external"]
    with baton.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Handoff)) == 0
    assert not baton.slack.of("chat.postMessage")


def test_accept_updates_the_card_and_records_who(baton: Baton) -> None:
    post = create_handoff(baton)
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    accept = next(e for e in actions["elements"] if e["action_id"] == "handoff_accept")
    baton.click(
        {"action_id": "handoff_accept", "block_id": actions["block_id"], "value": accept["value"]},
        user=CS_USER,
    )
    update = baton.slack.wait_for("chat.update")[0].args
    assert update["channel"] == HANDOFF_CHANNEL
    assert "Accepted" in str(update["blocks"]) and f"<@{CS_USER}>" in str(update["blocks"])
