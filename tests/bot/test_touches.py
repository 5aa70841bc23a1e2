"""Reminder DMs through the outbox, the "Log touch" button and modal, and `/handoff tier`."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

from slack_sdk import WebClient
from sqlalchemy import select

from bot.delivery import Delivery
from clock import local_date
from handoff import reminders, service
from handoff.service import Actor
from settings import Settings
from storage.models import Account, Handoff, Touch
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP, Baton
from tests.bot.test_commands import _answer
from tests.bot.test_handoff_flow import create_handoff


def _assign(baton: Baton, csm: str = CS_USER) -> None:
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        service.assign(
            s, handoff_id=h.id, csm_user_id=csm, actor=Actor(CS_USER, is_cs=True), clock=baton.clock
        )
    baton.wait_idle()


def _remind(baton: Baton, settings: Settings, days: int) -> list[dict]:
    """Run the day's reminders ``days`` after the handoff and deliver them; returns the posts."""
    when = baton.clock() + timedelta(days=days)
    with baton.db.session() as s:
        reminders.queue(s, local_date(lambda: when, settings.rules.schedule.timezone), settings.rules, when)
    n = len(baton.slack.of("chat.postMessage"))
    client = WebClient(token=baton.slack.token, base_url=baton.slack.base_url)
    stats = Delivery(baton.db, client, settings, lambda: when).run()
    assert stats.dead == 0 and stats.retried == 0, stats.errors
    return [c.args for c in baton.slack.of("chat.postMessage")[n:]]


def _log_button(post: dict) -> dict:
    block = next(b for b in post["blocks"] if b.get("accessory", {}).get("action_id") == "touch_log_open")
    el = block["accessory"]
    return {"action_id": el["action_id"], "block_id": block.get("block_id", "b"), "value": el["value"]}


def test_the_csm_gets_one_dm_in_their_language_and_logs_the_touch_from_it(
    baton: Baton, settings: Settings
) -> None:
    create_handoff(baton)  # JPY 800,000 a month: high touch, kickoff due in 7 days
    _assign(baton)
    baton.slack.locales[CS_USER] = "ja-JP"
    posts = _remind(baton, settings, 6)
    assert baton.slack.of("conversations.open")[-1].args["users"] == CS_USER
    (dm,) = posts
    assert dm["channel"] == "D" + CS_USER[1:] and dm["metadata"]["event_type"] == "baton_outbox"
    # this year's dates without the year, never ISO inside a Japanese sentence
    assert "本日対応が必要なタッチ・契約更新" in str(
        dm["blocks"]
    ) and "キックオフの期限は11月30日です" in str(dm["blocks"])
    assert _remind(baton, settings, 6) == []  # sent once

    n = len(baton.slack.of("views.open"))
    assert baton.click(_log_button(dm), CS_USER, channel=dm["channel"]).status_code == 200
    view = baton.slack.wait_for("views.open", n + 1)[-1].args["view"]
    assert view["callback_id"] == "touch_log"
    kind = next(b for b in view["blocks"] if b.get("block_id") == "touch_kind")
    assert kind["element"]["initial_option"]["value"] == "kickoff"

    tomorrow = (baton.clock() + timedelta(days=1)).date().isoformat()
    refused = baton.submit(view, {"touch_day": tomorrow}, user=CS_USER)
    assert refused.json() == {
        "response_action": "errors",
        "errors": {"touch_day": "未来の日付は記録できません。"},
    }

    yesterday = (baton.clock() - timedelta(days=1)).date()
    published = len(baton.slack.of("views.publish"))
    ok = baton.submit(
        view, {"touch_day": yesterday.isoformat(), "touch_note": "<!channel> goals set"}, user=CS_USER
    )
    assert ok.status_code == 200 and ok.content in (b"", b"{}")
    baton.slack.wait_for("views.publish", published + 1)  # the Home tab follows
    with baton.db.session() as s:
        touch = s.scalars(select(Touch)).one()
        assert (touch.kind, touch.note, touch.logged_by) == ("kickoff", "<!channel> goals set", CS_USER)
        assert touch.occurred_at.astimezone(UTC).date() == yesterday
    notice = [c.args for c in baton.slack.of("chat.postMessage") if c.args["channel"] == CS_USER][-1]
    assert "キックオフを記録しました" in notice["text"] and "7項目中1項目完了" in notice["text"]
    assert _remind(baton, settings, 10) == []  # logged: no overdue chase


def test_reminders_for_accounts_without_a_csm_go_to_the_handoff_channel(
    baton: Baton, settings: Settings
) -> None:
    create_handoff(baton)
    (post,) = _remind(baton, settings, 6)
    assert post["channel"] == HANDOFF_CHANNEL
    assert "without a CSM" in str(post["blocks"]) and "kickoff due" in str(post["blocks"])


def test_many_reminders_are_split_across_messages_within_the_block_limit(
    baton: Baton, settings: Settings
) -> None:
    now = baton.clock()
    with baton.db.session() as s:
        for i in range(60):
            s.add(
                Account(
                    name=f"Renewing {i:02}",
                    name_key=f"renewing {i:02}",
                    renewal_date=(now + timedelta(days=30)).date(),
                    csm_user_id=CS_USER,
                    created_at=now,
                    updated_at=now,
                )
            )
    first, second = _remind(baton, settings, 0)  # the fake Slack checks each against Block Kit
    lines = [b for post in (first, second) for b in post["blocks"] if b.get("accessory")]
    assert len(lines) == 60 and len(first["blocks"]) <= 50  # every reminder shown, none cut off
    assert first["blocks"][0]["text"]["text"].endswith("(1/2)") and "(2/2)" in str(second["blocks"][0])


def test_tier_command_is_for_cs_and_changes_the_cadence(baton: Baton) -> None:
    create_handoff(baton)
    assert "Only customer success" in _answer(baton, "tier Acme Corp tech", user=REP)["text"]
    assert "Tech touch" in _answer(baton, "tier acme corp tech", user=CS_USER)["text"]
    with baton.db.session() as s:
        assert s.scalars(select(Account.touch_tier)).one() == "tech"
    assert "/handoff tier Account name" in _answer(baton, "tier Acme Corp platinum", user=CS_USER)["text"]
    assert "Did you mean" in _answer(baton, "tier Acme Crop high", user=CS_USER)["text"]


def test_touch_from_the_command_refreshes_the_home_tab(baton: Baton) -> None:
    create_handoff(baton)
    _assign(baton)
    n = len(baton.slack.of("views.publish"))
    _answer(baton, "touch Acme Corp kickoff", user=CS_USER)
    view = baton.slack.wait_for("views.publish", n + 1)[-1].args["view"]
    assert "next: check-in by" in str(view["blocks"])
    button = next(b["accessory"] for b in view["blocks"] if "accessory" in b)
    assert json.loads(button["value"])["k"] == "check_in"
