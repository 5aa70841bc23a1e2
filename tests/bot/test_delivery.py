"""Every message kind through the outbox: a 429 or a 500 on its post is retried and it lands once;
a lost answer is looked up, not re-posted; the submitter is told what really happened."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.delivery import BACKOFF, Delivery, Stats, retry_after
from clock import local_date
from handoff import reminders
from settings import Settings
from storage import Database
from storage.models import Handoff, Outbox
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP, VALID, Baton, card_action
from tests.bot.test_edit import _open_edit
from tests.bot.test_handoff_flow import create_handoff, open_modal
from tests.bot.test_touches import _assign
from tests.fakeslack import FakeSlack

RATE_LIMITED = (429, {"Retry-After": "3"}, {"ok": False, "error": "ratelimited"})
SERVER_ERROR = (500, {}, {"ok": False, "error": "internal_error"})


def _deliver(baton: Baton, settings: Settings, *, after: timedelta = timedelta(0)) -> Stats:
    """The scheduler's outbox job, ``after`` from now."""
    baton.clock.advance(seconds=after.total_seconds())
    client = WebClient(token=baton.slack.token, base_url=baton.slack.base_url)
    return Delivery(baton.db, client, settings, baton.clock).run()


def _landed(baton: Baton, channel: str, thread_ts: str | None = None) -> list[dict]:
    """Messages that really are in Slack now (failed calls left nothing)."""
    if thread_ts:
        return baton.slack.replies.get((channel, thread_ts), [])
    return baton.slack.messages.get(channel, [])


def _waits(baton: Baton) -> dict[str, timedelta]:
    with baton.db.session() as s:
        return {
            o.action: o.next_attempt_at - baton.clock()
            for o in s.scalars(select(Outbox).where(Outbox.state == "pending"))
        }


def _to_submitter(baton: Baton) -> list[str]:
    return [c.args["text"] for c in baton.slack.of("chat.postMessage") if c.args["channel"] == REP]


def test_a_429_then_a_500_on_the_card_and_it_is_posted_once_with_its_ts(
    baton: Baton, settings: Settings
) -> None:
    baton.slack.fail["chat.postMessage"] = [RATE_LIMITED]
    view = open_modal(baton)
    assert baton.submit(view, VALID).status_code == 200
    baton.wait_idle()
    assert _landed(baton, HANDOFF_CHANNEL) == []
    assert _waits(baton) == {"card": timedelta(seconds=3)}  # Retry-After honoured
    told = _to_submitter(baton)
    # the nudge and the notice say the same thing: saved, not in the channel yet; never "posted"
    assert any("saved" in t and "not in the channel yet" in t and "rate limited" in t for t in told)
    assert not any("is posted" in t for t in told)

    baton.slack.fail["chat.postMessage"] = [SERVER_ERROR]
    assert _deliver(baton, settings, after=timedelta(seconds=3)).retried == 1
    assert _waits(baton) == {"card": BACKOFF}
    assert _deliver(baton, settings, after=BACKOFF).sent == 1
    assert _deliver(baton, settings, after=timedelta(minutes=5)).sent == 0  # nothing twice
    (card,) = _landed(baton, HANDOFF_CHANNEL)
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert (h.channel_id, h.message_ts) == (HANDOFF_CHANNEL, card["ts"]) and h.permalink


def test_a_card_posted_at_once_is_announced_as_posted_and_nothing_else(baton: Baton) -> None:
    create_handoff(baton)
    told = _to_submitter(baton)
    assert len(told) == 1 and "is posted" in told[0]  # the nudge; no "could not post" beside it


def test_a_lost_answer_on_the_card_is_found_in_the_channel_not_posted_again(
    baton: Baton, settings: Settings
) -> None:
    baton.slack.drop_answer["chat.postMessage"] = 1
    view = open_modal(baton)
    assert baton.submit(view, VALID).status_code == 200
    baton.wait_idle()
    stats = _deliver(baton, settings, after=timedelta(minutes=2))
    assert stats.adopted == 1
    (card,) = _landed(baton, HANDOFF_CHANNEL)
    with baton.db.session() as s:
        assert s.scalars(select(Handoff)).one().message_ts == card["ts"]


def test_a_500_and_a_429_on_the_thread_note_and_the_csm_dm_each_land_once(
    baton: Baton, settings: Settings
) -> None:
    post = create_handoff(baton, stakeholders_external="Hanako Sato | CFO | hanako@acme.example")
    with baton.db.session() as s:
        card_ts = s.scalars(select(Handoff)).one().message_ts
    baton.slack.fail["chat.postMessage"] = [SERVER_ERROR, RATE_LIMITED]  # the note, then the DM
    baton.click({**card_action(post, "handoff_assign"), "selected_user": "UCSM0042"}, user=CS_USER)
    baton.wait_idle()
    assert _waits(baton) == {"card_note": BACKOFF, "dm_assigned": timedelta(seconds=3)}
    assert _deliver(baton, settings, after=timedelta(seconds=3)).sent == 1  # the DM
    assert _deliver(baton, settings, after=BACKOFF).sent == 1  # the note
    assert _deliver(baton, settings, after=timedelta(minutes=5)).sent == 0
    (note,) = _landed(baton, HANDOFF_CHANNEL, card_ts)
    assert "<@UCSM0042> is the CSM" in note["text"]
    (dm,) = _landed(baton, "DCSM0042")
    assert "assigned you as CSM for *Acme Corp*" in dm["text"]


def test_a_lost_answer_on_a_dm_is_found_in_the_im_channel(baton: Baton, settings: Settings) -> None:
    post = create_handoff(baton)
    baton.slack.drop_answer["chat.postMessage"] = 2  # the note and the DM land; their answers do not
    baton.click({**card_action(post, "handoff_assign"), "selected_user": "UCSM0042"}, user=CS_USER)
    baton.wait_idle()
    stats = _deliver(baton, settings, after=timedelta(minutes=2))
    assert (stats.adopted, stats.sent) == (2, 2)
    assert len(_landed(baton, "DCSM0042")) == 1
    assert baton.slack.of("conversations.open")[-1].args["users"] == "UCSM0042"


def test_a_question_rate_limited_with_a_retry_after_that_is_no_number_backs_off_and_posts_once(
    baton: Baton, settings: Settings
) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_ask"), user=CS_USER)
    view = baton.slack.wait_for("views.open", 2)[-1].args["view"]
    baton.slack.fail["chat.postMessage"] = [
        (429, {"Retry-After": "soon"}, {"ok": False, "error": "ratelimited"}),
        SERVER_ERROR,
    ]
    assert baton.submit(view, {"question": "Who signs the PO?"}, user=CS_USER).status_code == 200
    baton.wait_idle()
    assert _waits(baton) == {"question": BACKOFF}  # not parked for the whole lease
    (said,) = [c.args["text"] for c in baton.slack.of("chat.postEphemeral")]
    assert "saved" in said and "posted in" not in said  # queued, not posted
    assert _deliver(baton, settings, after=BACKOFF).retried == 1
    assert _deliver(baton, settings, after=BACKOFF).sent == 1
    (question,) = _landed(baton, HANDOFF_CHANNEL, post_ts(baton))
    assert "Who signs the PO?" in question["text"]


def post_ts(baton: Baton) -> str:
    with baton.db.session() as s:
        ts = s.scalars(select(Handoff)).one().message_ts
    assert ts
    return ts


def test_a_reminder_hit_by_a_429_and_a_500_lands_once(baton: Baton, settings: Settings) -> None:
    create_handoff(baton)
    _assign(baton)
    when = baton.clock() + timedelta(days=6)
    with baton.db.session() as s:
        reminders.queue(s, local_date(lambda: when, settings.rules.schedule.timezone), settings.rules, when)
    baton.clock.advance(days=6)
    baton.slack.fail["chat.postMessage"] = [RATE_LIMITED, SERVER_ERROR]
    assert _deliver(baton, settings).retried == 1
    assert _deliver(baton, settings, after=timedelta(seconds=3)).retried == 1
    assert _deliver(baton, settings, after=BACKOFF).sent == 1
    assert _deliver(baton, settings, after=timedelta(minutes=5)).sent == 0
    assert len(_landed(baton, "D" + CS_USER[1:])) == 1


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("7", timedelta(seconds=7)),
        ("1.5", timedelta(seconds=2)),
        ("soon", BACKOFF),
        ("Wed, 21 Oct 2026 07:28:00 GMT", BACKOFF),
        ("", BACKOFF),
        (None, BACKOFF),
        ("-3", BACKOFF),
        ("nan", BACKOFF),
        ("1e9", BACKOFF),
    ],
)
def test_retry_after_is_read_as_seconds_and_anything_else_is_the_backoff(
    header: str | None, wait: timedelta
) -> None:
    assert retry_after(header) == wait


def test_an_edit_while_the_card_waits_posts_one_card_with_the_edit_and_then_its_note(
    baton: Baton, settings: Settings
) -> None:
    baton.slack.fail["chat.postMessage"] = [(200, {}, {"ok": False, "error": "not_in_channel"})]
    view = open_modal(baton)
    assert baton.submit(view, VALID).status_code == 200
    baton.wait_idle()
    edit = _open_edit(baton)
    assert baton.submit(edit, {"seats": 150}).status_code == 200
    baton.wait_idle()
    assert _landed(baton, HANDOFF_CHANNEL) == []  # Baton is still not in the channel
    assert _deliver(baton, settings, after=timedelta(minutes=15)).sent == 2  # invited meanwhile
    (card,) = _landed(baton, HANDOFF_CHANNEL)
    (posted,) = [
        c.args
        for c in baton.slack.of("chat.postMessage")
        if c.args["channel"] == HANDOFF_CHANNEL and "_failed" not in c.args and not c.args.get("thread_ts")
    ]
    assert "150" in str(posted["blocks"])  # rendered when sent: the edit is in it
    (note,) = _landed(baton, HANDOFF_CHANNEL, card["ts"])
    assert note["text"].endswith("edited this handoff: Seats.")


def test_kill_9_mid_post_then_a_restart_finds_the_message_and_posts_nothing_twice(
    db: Database, slack: FakeSlack, settings: Settings, tmp_path
) -> None:
    """The real crash: a delivery process killed with SIGKILL after Slack took its message and before
    it heard back. The next drain, once the lease is over, finds the message by its metadata."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from storage.outbox import enqueue
    from tests.clocks import FakeClock

    clock = FakeClock()
    with db.session() as s:
        enqueue(s, None, "notice", clock(), user="UCSM0042", text="Acme Corp's card is posted.")
    slack.hold["chat.postMessage"] = held = threading.Event()
    root = Path(__file__).resolve().parents[2]
    script = """if True:
        import sys; sys.path.insert(0, ".")
        from dataclasses import replace
        from slack_sdk import WebClient
        from bot.delivery import Delivery
        from clock import utcnow
        from settings import Settings
        from storage import Database
        token, api, url = sys.argv[1:]
        s = replace(Settings.from_env({}), slack_bot_token=token, slack_api_url=api)
        Delivery(Database(url), WebClient(token=token, base_url=api), s, utcnow).run()
    """
    argv = [sys.executable, "-c", script, slack.token, slack.base_url, db.url]
    proc = subprocess.Popen(argv, cwd=root, env=dict(os.environ))
    try:
        slack.wait_for("chat.postMessage", 1, timeout=60)  # Slack has the message now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        held.set()
        if proc.poll() is None:
            proc.kill()
    del slack.hold["chat.postMessage"]
    with db.session() as s:
        (row,) = s.scalars(select(Outbox)).all()
    assert row.state == "in_flight"  # what the dead process left
    later = FakeClock(row.next_attempt_at + timedelta(seconds=1))
    client = WebClient(token=slack.token, base_url=slack.base_url)
    stats = Delivery(db, client, settings, later).run()
    assert (stats.adopted, stats.retried, stats.dead) == (1, 0, 0)
    assert len(slack.of("chat.postMessage")) == 1  # found, not posted again
    with db.session() as s:
        assert s.scalars(select(Outbox)).one().state == "sent"
