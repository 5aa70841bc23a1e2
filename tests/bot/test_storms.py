"""A 429 and 500 storm over every kind of outbox message in one run: each message meets a 429, then a
500 (and a post also loses its answer once), and still lands exactly once; nothing is sent twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select

from alerts import service as alerts
from bot.delivery import SENDERS, Delivery
from clock import local_date
from crm.model import WonDeal
from crm.sync import announce
from handoff import reminders
from handoff import service as handoffs
from handoff.service import Actor
from jobs.scheduler import Jobs
from settings import Settings
from storage import Database
from storage.directory import NOT_FOUND, queue_unknown_reports
from storage.models import Account, Alert, CrmDeal, Outbox, SlackUserEmail
from storage.outbox import enqueue
from tests.alerts.factory import AS_OF, accounts, daily
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP
from tests.clocks import FakeClock
from tests.fakeslack import LOST, Failure, FakeSlack
from tests.handoff.test_checklist import valid_form

RATE_LIMITED: Failure = (429, {"Retry-After": "2"}, {"ok": False, "error": "ratelimited"})
SERVER_ERROR: Failure = (500, {}, {"ok": False, "error": "internal_error"})
CSM, DIGEST_CHANNEL = "UCSM0042", "CDIGEST01"
UPDATES = {"update", "card_update"}  # chat.update in place: no new message
# the kinds that are Slack messages; the CRM write-back's storms are in tests/crm/test_writeback.py
NOT_SLACK = {"crm_writeback"}
SLACK_KINDS = set(SENDERS) - NOT_SLACK
POSTS = SLACK_KINDS - UPDATES - {"digest_chart"}  # each a new chat.postMessage carrying its row id


class Storm:
    """Fails each message's first calls, told apart by what identifies the message: a post by the
    outbox id in its metadata, an update by the message it edits, the chart upload by its file."""

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], list[str]] = {}

    @staticmethod
    def key(method: str, args: dict[str, Any]) -> tuple[Any, ...] | None:
        if method == "chat.postMessage":
            return ("post", ((args.get("metadata") or {}).get("event_payload") or {}).get("outbox_id"))
        if method == "chat.update":
            return ("update", args.get("channel"), args.get("ts"))
        if method in ("files.getUploadURLExternal", "files.completeUploadExternal", "conversations.open"):
            return (method, args.get("filename") or args.get("users"))
        return None  # lookups, locales: answered

    def __call__(self, method: str, args: dict[str, Any]) -> Failure | str | None:
        key = self.key(method, args)
        if key is None:
            return None
        plan: list[Failure | str] = [RATE_LIMITED, SERVER_ERROR] + ([LOST] if key[0] == "post" else [])
        seen = self.seen.setdefault(key, [])
        outcome = plan[len(seen)] if len(seen) < len(plan) else None
        seen.append("ok" if outcome is None else outcome if isinstance(outcome, str) else str(outcome[0]))
        return outcome


def _drain(db: Database, delivery: Delivery, clock: FakeClock, rounds: int = 40) -> None:
    """The scheduler's outbox job every 31 s until nothing is left to send."""
    for _ in range(rounds):
        delivery.run(limit=500)
        with db.session() as s:
            left = s.scalars(select(Outbox.action).where(Outbox.state != "sent")).all()
        if not left:
            return
        clock.advance(seconds=31)
    raise AssertionError(f"still not sent after {rounds} drains: {sorted(left)}")


def _landed(slack: FakeSlack) -> Counter[int]:
    """Outbox ids of the messages that really are in Slack, top-level and in threads."""
    msgs = [m for ms in slack.messages.values() for m in ms] + [
        m for ms in slack.replies.values() for m in ms
    ]
    return Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id") for m in msgs)


def _first_wave(db: Database, settings: Settings, clock: FakeClock, slack: FakeSlack) -> int:
    """Alert cards, a handoff card and its DMs, a notice, reminders, an unknown-CSM report, the digest
    and its chart: everything that needs no card already in Slack. Returns the handoff id."""
    rules = settings.rules
    accounts(db, ("DROP", 50, "Pro"), ("FULL", 20, "Pro"))  # a churn risk and an upsell (full seats)
    daily(db, "DROP", "active_users", lambda n: 40 if n >= 7 else 12)
    daily(db, "FULL", "active_users", lambda n: 20)
    with db.session() as s:
        h = handoffs.create(
            s, form=valid_form(account_name="Storm Corp"), actor=Actor(REP), clock=clock, rules=rules
        )
        handoffs.assign(s, handoff_id=h.id, csm_user_id=CSM, actor=Actor(CS_USER, is_cs=True), clock=clock)
        hid = h.id
    clock.advance(days=6)  # the kickoff is due: a reminder for the CSM
    now = clock()
    with db.session() as s:
        h = handoffs.get(s, hid)
        handoffs.queue_card(s, h, HANDOFF_CHANNEL, now)
        handoffs.queue_nudge(s, h, now)
        handoffs.queue_assigned_dm(s, h, CSM, CS_USER, now)
        enqueue(s, None, "notice", now, user=REP, text="Storm Corp's touch is logged.")
        assert reminders.queue(s, local_date(clock, rules.schedule.timezone), rules, now).messages >= 1
        full = s.scalars(select(Account).where(Account.external_id == "FULL")).one()
        full.csm_email = "ghost@example.com"
        s.add(SlackUserEmail(email="ghost@example.com", error=NOT_FOUND, looked_up_at=now))
        s.flush()
        assert queue_unknown_reports(s, now) == 1
        assert len(alerts.scan(s, as_of=AS_OF, rules=rules, clock=clock).raised) == 2
        _won_deal(s, slack, now)
    assert Jobs(db, settings, clock).digest_job()  # the digest and its chart, with their ledger row
    return hid


def _won_deal(s: Any, slack: FakeSlack, now: Any) -> None:
    """A deal won in the CRM: its owner's "Start handoff" DM (crm_won_deal)."""
    slack.emails["closer@example.com"] = REP
    deal = WonDeal("hubspot", "D-STORM", "Storm deal", "Storm Corp", None, None, None, None, None, None)
    row = CrmDeal(
        crm="hubspot", deal_id="D-STORM", owner_email="closer@example.com", deal=deal.as_json(), found_at=now
    )
    s.add(row)
    s.flush()
    announce(s, row)


def _second_wave(db: Database, clock: FakeClock, hid: int) -> None:
    """What changes posted cards: alert updates and thread notes, the upsell passed to inside sales,
    the handoff card's update, a note and a question in its thread."""
    now = clock()
    with db.session() as s:
        churn, upsell = sorted(s.scalars(select(Alert)).all(), key=lambda a: a.kind != "churn_risk")
        alerts.assign_owner(s, alert_id=churn.id, owner=CS_USER, actor=CS_USER, clock=clock)
        alerts.hand_to_inside_sales(s, alert_id=upsell.id, actor=CS_USER, clock=clock)
        h = handoffs.get(s, hid)
        handoffs.queue_change(s, h, now, note="Seats changed to 150.")
        handoffs.queue_question(s, h, "Who signs the PO?", now)


def test_a_429_and_500_storm_on_every_message_kind_lands_each_message_once(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    settings = replace(settings, digest_channel=DIGEST_CHANNEL)
    clock = FakeClock()
    storm = slack.failer = Storm()
    delivery = Delivery(db, WebClient(token=slack.token, base_url=slack.base_url), settings, clock)
    hid = _first_wave(db, settings, clock, slack)
    _drain(db, delivery, clock)
    _second_wave(db, clock, hid)
    _drain(db, delivery, clock)
    calls = len(slack.calls)
    for _ in range(3):  # later drains, past every lease: nothing left to send, nothing sent again
        clock.advance(minutes=10)
        assert delivery.run().sent == 0
    assert [c.method for c in slack.calls[calls:]] == []

    with db.session() as s:
        rows = s.scalars(select(Outbox)).all()
    assert {r.action for r in rows} == SLACK_KINDS  # every Slack kind there is was in the storm
    assert {r.state for r in rows} == {"sent"}
    posts = {r.id: r for r in rows if r.action in POSTS}
    # every post met a 429, a 500 and a lost answer, then was found in Slack, not posted again
    assert {k[1]: v for k, v in storm.seen.items() if k[0] == "post"} == {
        i: ["429", "500", LOST] for i in posts
    }
    landed = _landed(slack)
    assert {i: landed[i] for i in posts} == dict.fromkeys(posts, 1)
    ts_of = {
        m["metadata"]["event_payload"]["outbox_id"]: m["ts"]
        for ms in [*slack.messages.values(), *slack.replies.values()]
        for m in ms
        if m.get("metadata")
    }
    assert all(r.result_ts == ts_of[i] for i, r in posts.items())  # each row knows its one message
    # every update met a 429 and a 500, then edited its card once
    updates = {k: v for k, v in storm.seen.items() if k[0] == "update"}
    assert len(updates) == sum(r.action in UPDATES for r in rows) == 3
    assert all(v == ["429", "500", "ok"] for v in updates.values())
    # the chart: its upload URL and its completion each failed twice, then it was uploaded once
    chart = {k[0]: v for k, v in storm.seen.items() if k[0].startswith("files.")}
    assert chart == {
        "files.getUploadURLExternal": ["429", "500", "ok", "ok", "ok"],
        "files.completeUploadExternal": ["429", "500", "ok"],
    }
    done = [c for c in slack.of("files.completeUploadExternal") if "_failed" not in c.args]
    assert len(done) == 1 and len(slack.uploads) == 3
