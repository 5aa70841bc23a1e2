"""The handoff as a user lives it, through the real HTTP endpoint and the fake Slack API."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from storage.models import Handoff, HandoffEvent
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, OTHER, REP, VALID, Baton, card_action


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


def test_assign_updates_the_card_accepts_and_dms_the_csm_the_full_handoff(baton: Baton) -> None:
    post = create_handoff(baton, stakeholders_external="Hanako Sato | CFO | hanako@acme.example")
    n_posts = len(baton.slack.of("chat.postMessage"))
    baton.click({**card_action(post, "handoff_assign"), "selected_user": "UCSM0042"}, user=CS_USER)
    update = baton.slack.wait_for("chat.update")[0].args
    assert "<@UCSM0042>" in str(update["blocks"]) and "Accepted" in str(update["blocks"])
    posts = baton.slack.wait_for("chat.postMessage", n_posts + 2)[n_posts:]
    dm = next(p.args for p in posts if p.args["channel"] == "UCSM0042")
    assert "assigned you as CSM for *Acme Corp*" in dm["text"]
    assert "Hanako Sato · CFO · hanako@acme.example" in str(dm["blocks"])
    assert "Cut first-response time in half." in str(dm["blocks"])
    thread = next(p.args for p in posts if p.args.get("thread_ts"))
    assert thread["channel"] == HANDOFF_CHANNEL and "<@UCSM0042> is the CSM" in thread["text"]
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert (h.status, h.csm_user_id, h.accepted_by, h.assigned_by) == (
            "accepted",
            "UCSM0042",
            CS_USER,
            CS_USER,
        )
        assert h.account.csm_user_id == "UCSM0042"
        assert s.scalars(select(HandoffEvent.kind).order_by(HandoffEvent.id)).all() == [
            "created",
            "accepted",
            "assigned",
        ]


def test_a_member_of_the_cs_user_group_may_accept(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_accept"), user="UCS0002")  # via user group SCS00001
    assert "Accepted" in str(baton.slack.wait_for("chat.update")[0].args["blocks"])


def test_non_cs_user_is_refused_and_the_card_is_unchanged(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_accept"), user=OTHER)
    baton.click({**card_action(post, "handoff_assign"), "selected_user": OTHER}, user=OTHER)
    answers = baton.slack.wait_responses(2)
    assert all(a["response_type"] == "ephemeral" and a["replace_original"] is False for a in answers)
    # the two clicks are answered by the listener pool, in whichever order their threads finish
    texts = sorted(a["text"] for a in answers)
    assert "Only customer-success members can accept" in texts[0]
    assert "Only customer-success members can assign the CSM" in texts[1]
    baton.wait_idle()
    assert not baton.slack.of("chat.update")
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert h.status == "open" and h.csm_user_id is None
        assert s.scalars(select(HandoffEvent.kind)).all() == ["created"]


def test_accepting_twice_changes_nothing_and_says_who_accepted(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_accept"), user=CS_USER)
    baton.slack.wait_for("chat.update")
    baton.click(card_action(post, "handoff_accept"), user="UCS0002")
    assert f"already accepted by <@{CS_USER}>" in baton.slack.wait_responses(1)[0]["text"]
    baton.wait_idle()
    assert len(baton.slack.of("chat.update")) == 1


def test_user_text_is_shown_literally_and_pings_nobody(baton: Baton) -> None:
    hostile = "<!channel> ping <@U123> see <https://evil.example|our docs> & more"
    post = create_handoff(baton, why_bought=hostile, plan="<!here> Plan", concerns=hostile)
    rendered = str(post["blocks"])
    assert "<!channel>" not in rendered and "<@U123>" not in rendered and "<https://evil" not in rendered
    assert (
        "&lt;!channel&gt; ping &lt;@U123&gt; see &lt;https://evil.example|our docs&gt; &amp; more" in rendered
    )
    assert "&lt;!here&gt; Plan" in rendered
    baton.click(card_action(post, "handoff_view"), user=CS_USER)
    modal = str(baton.slack.wait_for("views.open", 2)[-1].args["view"])
    assert "<!channel>" not in modal and "&lt;!channel&gt;" in modal
    for call in baton.slack.calls:  # nothing the app sent anywhere carries the raw mention
        assert "<!channel>" not in str(call.args)


def test_question_posts_in_the_thread_and_mentions_the_submitter(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_ask"), user=CS_USER)
    view = baton.slack.wait_for("views.open", 2)[-1].args["view"]
    assert view["callback_id"] == "handoff_question"
    resp = baton.submit(view, {"question": "Who owns the <!channel> rollout?\nAnd when?"}, user=CS_USER)
    assert resp.status_code == 200
    baton.wait_idle()
    note = [c.args for c in baton.slack.of("chat.postMessage") if c.args.get("thread_ts")][-1]
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert note["thread_ts"] == h.message_ts and note["channel"] == HANDOFF_CHANNEL
        event = s.scalars(select(HandoffEvent).where(HandoffEvent.kind == "question_asked")).one()
    assert f"<@{CS_USER}> asks <@{REP}>" in note["text"]
    assert ">Who owns the &lt;!channel&gt; rollout?\n>And when?" in note["text"]
    assert event.actor_user_id == CS_USER and event.details["text"].startswith("Who owns")


def test_empty_question_gets_an_inline_error(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_ask"), user=CS_USER)
    view = baton.slack.wait_for("views.open", 2)[-1].args["view"]
    body = baton.submit(view, {"question": "   "}, user=CS_USER).json()
    assert body == {"response_action": "errors", "errors": {"question": "This is required."}}


def test_when_the_card_cannot_be_posted_the_handoff_is_kept_and_the_submitter_told(baton: Baton) -> None:
    baton.slack.fail["chat.postMessage"] = [(200, {}, {"ok": False, "error": "not_in_channel"})]
    view = open_modal(baton)
    assert baton.submit(view, VALID).status_code == 200
    baton.slack.wait_for("chat.postMessage", 3)  # failed card, notice, nudge
    baton.wait_idle()
    notice = next(
        c.args for c in baton.slack.of("chat.postMessage") if "not_in_channel" in c.args.get("text", "")
    )
    assert notice["channel"] == REP and "saved" in notice["text"]
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert h.message_ts is None
    # and the user can still find it
    baton.command("show Acme Corp")
    assert "Handoff: Acme Corp" in str(baton.slack.wait_responses(1)[0]["blocks"])


def test_the_accepted_time_falls_back_to_the_teams_local_time_with_its_zone(baton: Baton) -> None:
    from zoneinfo import ZoneInfo

    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_accept"), user=CS_USER)
    blocks = str(baton.slack.wait_for("chat.update")[0].args["blocks"])
    with baton.db.session() as s:
        accepted = s.scalars(select(Handoff)).one().accepted_at
    local = accepted.astimezone(ZoneInfo("Asia/Tokyo"))
    shown = f"{local:%b} {local.day}, {local.year} {local:%H:%M}"  # a date as people write it, not ISO
    assert f"|{shown} JST>" in blocks and "UTC" not in blocks  # Slack's <!date^…|fallback>
