"""Alert cards in Slack: delivery through the outbox (429, 5xx, lost answers, restarts) and the buttons."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk import WebClient
from sqlalchemy import select

from alerts import service
from bot.delivery import Delivery
from settings import Settings
from storage import Database
from storage.models import Alert, Outbox, UpsellOpportunity
from tests.alerts.factory import AS_OF, accounts, daily
from tests.bot.conftest import (
    ALERT_CHANNEL,
    CS_GROUP_MEMBER,
    CS_USER,
    HANDOFF_CHANNEL,
    OTHER,
    REP,
    Baton,
    card_action,
)
from tests.clocks import FakeClock
from tests.concurrency import at_once
from tests.fakeslack import FakeSlack


def _scan(db: Database, settings: Settings, clock: FakeClock) -> dict[str, int]:
    accounts(db, ("DROP", 50, "Pro"), ("FULL", 20, "Pro"))
    daily(db, "DROP", "active_users", lambda n: 40 if n >= 7 else 12)
    daily(db, "FULL", "active_users", lambda n: 20)
    with db.session() as s:
        return {
            r.account: r.alert_id
            for r in service.scan(s, as_of=AS_OF, rules=settings.rules, clock=clock).raised
        }


def _delivery(db: Database, slack: FakeSlack, settings: Settings, clock: FakeClock) -> Delivery:
    return Delivery(db, WebClient(token=slack.token, base_url=slack.base_url), settings, clock)


def _posts(slack: FakeSlack) -> list[dict]:
    return [c.args for c in slack.of("chat.postMessage") if "_failed" not in c.args]


def test_scan_results_are_posted_once_to_their_channels(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    clock = FakeClock()
    ids = _scan(db, settings, clock)
    stats = _delivery(db, slack, settings, clock).run()
    assert stats.sent == 2
    by_channel = {p["channel"]: p for p in _posts(slack)}
    assert set(by_channel) == {ALERT_CHANNEL, HANDOFF_CHANNEL}  # churn risk / upsell (cross-department)
    churn = by_channel[ALERT_CHANNEL]
    assert "Churn risk: Account DROP" in str(churn["blocks"])
    assert "active users averaged 12/day over the last 7 days vs 40/day before (−70%)" in str(churn["blocks"])
    assert churn["metadata"]["event_payload"]["outbox_id"] > 0
    assert "Hand to inside sales" in str(by_channel[HANDOFF_CHANNEL]["blocks"])
    with db.session() as s:
        posted = s.get(Alert, ids["DROP"])
        assert posted.message_ts is not None
        assert posted.permalink == (
            f"https://example.slack.com/archives/{ALERT_CHANNEL}/p{posted.message_ts.replace('.', '')}"
        )  # the Home tab links to the card
    assert _delivery(db, slack, settings, clock).run().sent == 0  # nothing twice


def test_429_then_500_are_retried_and_the_alert_lands_once(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    clock = FakeClock()
    _scan(db, settings, clock)
    slack.fail["chat.postMessage"] = [
        (429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"}),
        (500, {}, {"ok": False, "error": "internal_error"}),
    ]
    d = _delivery(db, slack, settings, clock)
    first = d.run()
    assert (first.sent, first.retried) == (0, 2)  # one alert hit 429, the other 500
    with db.session() as s:
        waits = sorted(o.next_attempt_at - clock.now for o in s.scalars(select(Outbox)))
    assert waits == [timedelta(seconds=7), timedelta(seconds=30)]  # Retry-After honoured; 5xx backs off
    assert d.run().sent == 0  # nothing is due yet
    clock.advance(seconds=7)
    assert d.run().sent == 1
    clock.advance(seconds=23)
    assert d.run().sent == 1
    assert len(_posts(slack)) == 2 and len(slack.of("chat.postMessage")) == 4


def test_a_lost_answer_is_not_posted_twice_after_restart(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    clock = FakeClock()
    _scan(db, settings, clock)
    slack.drop_answer["chat.postMessage"] = 1  # the first post lands but its answer never arrives
    _delivery(db, slack, settings, clock).run()
    clock.advance(minutes=2)
    restarted = _delivery(db, slack, settings, clock)  # a new process: knows only the database
    stats = restarted.run()
    assert stats.adopted == 1
    assert len(_posts(slack)) == 2  # each alert once
    with db.session() as s:
        assert all(a.message_ts for a in s.scalars(select(Alert)))
        assert {o.state for o in s.scalars(select(Outbox))} == {"sent"}


def test_a_channel_baton_is_not_in_is_retried_until_fixed_and_a_bad_payload_ends_dead(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    clock = FakeClock()
    _scan(db, settings, clock)
    slack.fail["chat.postMessage"] = [(200, {}, {"ok": False, "error": "not_in_channel"})] * 8 + [
        (200, {}, {"ok": False, "error": "invalid_blocks"})
    ] * 12
    d = _delivery(db, slack, settings, clock)
    for _ in range(4):
        d.run()
        clock.advance(minutes=16)
    with db.session() as s:
        rows = s.scalars(select(Outbox)).all()
        assert {o.state for o in rows} == {"pending"}  # someone can still invite Baton
        assert all("not_in_channel" in (o.last_error or "") for o in rows)
    for _ in range(8):
        d.run()
        clock.advance(hours=3)
    with db.session() as s:
        dead = s.scalars(select(Outbox).where(Outbox.state == "dead")).all()
    assert dead and all("invalid_blocks" in (o.last_error or "") for o in dead)


def test_two_drains_racing_post_each_message_once(db: Database, slack: FakeSlack, settings: Settings) -> None:

    clock = FakeClock()
    _scan(db, settings, clock)
    drains = [_delivery(db, slack, settings, clock) for _ in range(4)]
    at_once([d.run for d in drains])
    assert len(_posts(slack)) == 2


def test_a_thread_note_whose_answer_was_lost_is_not_repeated(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    clock = FakeClock()
    ids = _scan(db, settings, clock)
    d = _delivery(db, slack, settings, clock)
    d.run()
    with db.session() as s:
        service.assign_owner(s, alert_id=ids["DROP"], owner="UOWNER01", actor="UCS", clock=clock)
    slack.drop_answer["chat.postMessage"] = 1  # the thread note lands, its answer does not
    d.run()
    clock.advance(minutes=2)
    assert d.run().adopted == 1
    assert len(slack.replies) == 1 and len(next(iter(slack.replies.values()))) == 1


def test_buttons_update_the_card_in_place(baton: Baton, settings: Settings) -> None:
    clock = baton.clock
    _scan(baton.db, settings, clock)
    _delivery(baton.db, baton.slack, settings, clock).run()
    churn = next(p for p in _posts(baton.slack) if p["channel"] == ALERT_CHANNEL)
    baton.click(card_action(churn, "alert_ack"), user=CS_USER, channel=ALERT_CHANNEL)
    update = baton.slack.wait_for("chat.update")[0].args
    assert "Acknowledged" in str(update["blocks"]) and "alert_ack" not in str(update["blocks"])
    baton.click(
        {**card_action(churn, "alert_assign"), "selected_user": "UOWNER01"},
        user=CS_USER,
        channel=ALERT_CHANNEL,
    )
    baton.slack.wait_for("chat.update", 2)
    baton.wait_idle()
    assert any("made <@UOWNER01> the owner" in p["text"] for p in _posts(baton.slack) if p.get("thread_ts"))
    baton.click(card_action(churn, "alert_snooze"), user=CS_USER, channel=ALERT_CHANNEL)
    assert "Snoozed" in str(baton.slack.wait_for("chat.update", 3)[-1].args["blocks"])
    baton.click(card_action(churn, "alert_resolve"), user=CS_USER, channel=ALERT_CHANNEL)
    last = baton.slack.wait_for("chat.update", 4)[-1].args
    assert "Resolved" in str(last["blocks"]) and not [b for b in last["blocks"] if b["type"] == "actions"]
    baton.click(card_action(churn, "alert_resolve"), user=CS_USER, channel=ALERT_CHANNEL)
    assert "already resolved" in baton.slack.wait_responses(1)[0]["text"]


def test_hand_to_inside_sales_records_the_opportunity_and_posts_for_is(
    baton: Baton, settings: Settings
) -> None:
    clock = baton.clock
    _scan(baton.db, settings, clock)
    _delivery(baton.db, baton.slack, settings, clock).run()
    upsell = next(p for p in _posts(baton.slack) if p["channel"] == HANDOFF_CHANNEL)
    baton.click(card_action(upsell, "alert_hand_to_is"), user=CS_USER, channel=HANDOFF_CHANNEL)
    baton.slack.wait_for("chat.update")
    baton.wait_idle()
    is_post = _posts(baton.slack)[-1]
    assert "Upsell for inside sales: Account FULL" in str(is_post["blocks"])
    assert f"<@{CS_USER}> handed this upsell opportunity" in str(is_post["blocks"])
    with baton.db.session() as s:
        assert s.scalars(select(UpsellOpportunity.handed_by)).all() == [CS_USER]


def _churn_card(baton: Baton, settings: Settings) -> tuple[dict, int]:
    ids = _scan(baton.db, settings, baton.clock)
    _delivery(baton.db, baton.slack, settings, baton.clock).run()
    return next(p for p in _posts(baton.slack) if p["channel"] == ALERT_CHANNEL), ids["DROP"]


def _state(db: Database, alert_id: int) -> str:
    with db.session() as s:
        return s.get(Alert, alert_id).state


def test_someone_outside_cs_is_told_privately_and_nothing_changes(baton: Baton, settings: Settings) -> None:
    churn, alert_id = _churn_card(baton, settings)
    with baton.db.session() as s:
        before = [e.id for e in service.events(s, alert_id)]
    baton.slack.locales[OTHER] = "ja-JP"
    for action in ("alert_resolve", "alert_snooze", "alert_ack"):
        baton.click(card_action(churn, action), user=OTHER, channel=ALERT_CHANNEL)
    baton.click(
        {**card_action(churn, "alert_assign"), "selected_user": OTHER}, user=OTHER, channel=ALERT_CHANNEL
    )
    answers = baton.slack.wait_responses(4)
    baton.wait_idle()
    assert all(a["response_type"] == "ephemeral" and not a["replace_original"] for a in answers)
    assert all("カスタマーサクセス（BATON_CS_USERS）" in a["text"] for a in answers)  # in their language
    assert _state(baton.db, alert_id) == "open" and not baton.slack.of("chat.update")
    with baton.db.session() as s:
        assert s.get(Alert, alert_id).owner_user_id is None
        assert [e.id for e in service.events(s, alert_id)] == before


def test_hand_to_inside_sales_is_refused_outside_cs(baton: Baton, settings: Settings) -> None:
    _scan(baton.db, settings, baton.clock)
    _delivery(baton.db, baton.slack, settings, baton.clock).run()
    upsell = next(p for p in _posts(baton.slack) if p["channel"] == HANDOFF_CHANNEL)
    baton.click(card_action(upsell, "alert_hand_to_is"), user=OTHER, channel=HANDOFF_CHANNEL)
    assert "BATON_CS_USERS" in baton.slack.wait_responses(1)[0]["text"]
    baton.wait_idle()
    with baton.db.session() as s:
        assert s.scalars(select(UpsellOpportunity)).all() == []


def test_the_accounts_csm_and_cs_group_members_may_act(baton: Baton, settings: Settings) -> None:
    churn, alert_id = _churn_card(baton, settings)
    with baton.db.session() as s:
        s.get(Alert, alert_id).account.csm_user_id = REP  # not in BATON_CS_USERS, but this account's CSM
    baton.click(card_action(churn, "alert_ack"), user=REP, channel=ALERT_CHANNEL)
    baton.slack.wait_for("chat.update")
    assert _state(baton.db, alert_id) == "acknowledged"
    baton.click(card_action(churn, "alert_resolve"), user=CS_GROUP_MEMBER, channel=ALERT_CHANNEL)  # via group
    baton.slack.wait_for("chat.update", 2)
    baton.wait_idle()
    assert _state(baton.db, alert_id) == "resolved" and not baton.slack.responses


def test_a_click_naming_another_workspace_changes_nothing(baton: Baton, settings: Settings) -> None:
    churn, alert_id = _churn_card(baton, settings)
    resp = baton.interact(
        {
            "type": "block_actions",
            "team": {"id": "TFOREIGN"},
            "user": {"id": CS_USER, "team_id": "TFOREIGN"},
            "trigger_id": "trig.foreign",
            "response_url": baton.slack.response_url(),
            "channel": {"id": ALERT_CHANNEL},
            "container": {"type": "message", "channel_id": ALERT_CHANNEL},
            "message": {"ts": "1.0"},
            "actions": [card_action(churn, "alert_resolve")],
        }
    )
    assert resp.status_code == 403
    baton.wait_idle()
    assert _state(baton.db, alert_id) == "open" and not baton.slack.of("chat.update")
