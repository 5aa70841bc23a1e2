"""Every action on an alert leaves a trace people can see, once: a double click or a replayed request
changes nothing more."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts import service
from bot.i18n import translator
from bot.views.alert_card import alert_card, thread_note
from settings import Settings
from tests.bot.conftest import ALERT_CHANNEL, CS_GROUP_MEMBER, CS_USER, Baton, card_action
from tests.bot.test_alert_card import ACCOUNT, RULES, _alert
from tests.bot.test_alerts import _churn_card, _delivery, _posts


def _threads(baton: Baton) -> list[str]:
    return [p["text"] for p in _posts(baton.slack) if p.get("thread_ts")]


def _kinds(baton: Baton, alert_id: int) -> list[str]:
    with baton.db.session() as s:
        return [e.kind for e in service.events(s, alert_id)]


def test_a_snooze_says_who_and_until_when_on_the_card_and_in_the_thread(
    baton: Baton, settings: Settings
) -> None:
    churn, alert_id = _churn_card(baton, settings)
    for _ in range(2):  # a double click
        baton.click(card_action(churn, "alert_ack"), user=CS_USER, channel=ALERT_CHANNEL)
    baton.slack.wait_for("chat.update")
    baton.wait_idle()
    for _ in range(2):
        baton.click(card_action(churn, "alert_snooze"), user=CS_GROUP_MEMBER, channel=ALERT_CHANNEL)
    baton.slack.wait_for("chat.update", 2)
    baton.wait_idle()
    _delivery(baton.db, baton.slack, settings, baton.clock).run()  # anything the clicks left queued
    baton.wait_idle()
    updates = baton.slack.of("chat.update")
    assert len(updates) == 2  # one per action, none for the repeats
    card = str(updates[-1].args["blocks"])
    assert "Snoozed · until <!date^" in card and f", by <@{CS_GROUP_MEMBER}>" in card
    assert f"Acknowledged by <@{CS_USER}>" in card  # the acknowledger stays on the card
    snoozes = [t for t in _threads(baton) if "snoozed this alert until" in t]
    assert len(snoozes) == 1 and snoozes[0].startswith(
        f"<@{CS_GROUP_MEMBER}> snoozed this alert until <!date^"
    )
    assert _kinds(baton, alert_id) == ["raised", "acknowledged", "snoozed"]

    baton.click(card_action(churn, "alert_resolve"), user=CS_USER, channel=ALERT_CHANNEL)
    last = str(baton.slack.wait_for("chat.update", 3)[-1].args["blocks"])
    assert f"Resolved · <@{CS_USER}>" in last and f"Acknowledged by <@{CS_USER}>" in last


def test_choosing_the_same_owner_twice_notes_the_thread_once(baton: Baton, settings: Settings) -> None:
    churn, alert_id = _churn_card(baton, settings)
    pick = {**card_action(churn, "alert_assign"), "selected_user": "UOWNER01"}
    for _ in range(3):
        baton.click(pick, user=CS_USER, channel=ALERT_CHANNEL)
    baton.slack.wait_for("chat.update")
    baton.wait_idle()
    assert len([t for t in _threads(baton) if "made <@UOWNER01> the owner" in t]) == 1
    assert _kinds(baton, alert_id) == ["raised", "assigned"]


def test_the_snooze_reads_naturally_in_japanese() -> None:
    until = datetime(2026, 12, 8, 20, 0, tzinfo=UTC)  # Dec 9 in Tokyo
    alert = _alert(state="snoozed", snoozed_until=until, snoozed_by="USNOOZE1", acknowledged_by="UACK0001")
    card = str(alert_card(translator("ja"), alert, ACCOUNT, rules=RULES))
    assert "|2026年12月9日>まで（<@USNOOZE1> さんが設定）" in card
    assert "確認済み：<@UACK0001> さん" in card
    note = thread_note(
        translator("ja"),
        {"note": "snoozed", "actor": "USNOOZE1", "until": until.isoformat(), "day": "2026-12-09"},
    )
    assert note.startswith("<@USNOOZE1> さんがこのアラートを<!date^") and note.endswith(
        "|2026年12月9日>までスヌーズしました。"
    )
