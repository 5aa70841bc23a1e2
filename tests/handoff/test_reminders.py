"""Cadence reminders on a controlled clock: each stage once, late runs send only the latest stage,
logged touches silence their milestone, QBRs roll on, renewals at 90/60/30 days."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from handoff import cadence, reminders, service
from handoff.cadence import Kind
from handoff.service import Actor
from settings import Rules
from storage import Database
from storage.models import Account, Handoff, HandoffEvent, Outbox, ReminderSent, Touch
from tests.clocks import FakeClock
from tests.handoff.test_checklist import valid_form

RULES = Rules.load(None)
CSM = Actor("UCSM", is_cs=True)
START = datetime(2026, 7, 1, 1, tzinfo=UTC)  # 10:00 in Tokyo on July 1st
DAY0 = date(2026, 7, 1)


def _handoff(db: Database, name: str, price: int, csm: str | None = "UCSM", created: datetime = START) -> int:
    """USD price per month: >= 4167 high touch, >= 834 mid, else tech (thresholds 50k / 10k a year)."""
    with db.session() as s:
        h = service.create(
            s,
            form=valid_form(account_name=name, price_amount=Decimal(price), csm_user_id=csm),
            actor=Actor("UREP"),
            clock=FakeClock(created),
            rules=RULES,
        )
        h.account.renewal_date = None  # renewals are tested on their own
        h.account.csm_user_id = csm
        return h.account_id


def _run(db: Database, day: int, rules: Rules = RULES) -> list[dict]:
    """The daily job's work on day ``day`` after the handoff; returns the reminders queued."""
    today = DAY0 + timedelta(days=day)
    with db.session() as s:
        n = s.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)) or 0
        reminders.queue(s, today, rules, datetime.combine(today, datetime.min.time(), UTC))
    with db.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.id > n, Outbox.action == "reminders")).all()
        return [r | {"to": row.payload["recipient"]} for row in rows for r in row.payload["reminders"]]


def _log(db: Database, name: str, kind: Kind, day: int) -> None:
    with db.session() as s:
        cadence.log_touch(
            s, account_name=name, kind=kind, note="", actor=CSM, clock=FakeClock(START + timedelta(days=day))
        )


def _brief(sent: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(r["account"], r["stage"], r["touch"], r["due"]) for r in sent]


def test_a_milestone_is_announced_the_day_before_then_chased_once_when_overdue(db: Database) -> None:
    _handoff(db, "Acme", 5000)  # high touch: kickoff due on day 7
    assert _run(db, 5) == []
    assert _brief(_run(db, 6)) == [("Acme", "due", "kickoff", "2026-07-08")]
    assert _run(db, 6) == []  # a second run the same day (another instance, a retry) sends nothing
    assert _run(db, 7) == [] and _run(db, 9) == []
    overdue = _run(db, 10)
    assert _brief(overdue) == [("Acme", "overdue", "kickoff", "2026-07-08")]
    assert overdue[0]["to"] == "UCSM" and overdue[0]["tier"] == "high"
    assert _run(db, 11) == []


def test_a_logged_touch_silences_its_milestone_and_the_next_one_follows(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    _log(db, "Acme", Kind.KICKOFF, 5)  # before the reminder: it is never sent
    assert _run(db, 6) == [] and _run(db, 10) == []
    assert _brief(_run(db, 13)) == [("Acme", "due", "check_in", "2026-07-15")]
    _log(db, "Acme", Kind.CHECK_IN, 14)
    assert _run(db, 17) == []  # the check-in was logged: no overdue chase
    assert _brief(_run(db, 20)) == [("Acme", "due", "check_in", "2026-07-22")]


def test_a_late_first_run_sends_only_the_latest_stage_and_old_ones_not_at_all(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    first = _run(db, 12)  # Baton was down for the kickoff's due day: only the overdue chase goes
    assert _brief(first) == [("Acme", "overdue", "kickoff", "2026-07-08")]
    with db.session() as s:
        keys = set(s.scalars(select(ReminderSent.key)))
    assert {k.rsplit(":", 1)[1] for k in keys} == {"due", "overdue"}  # the skipped stage is settled too
    # a handoff from long ago: its onboarding stages are past the catch-up window, none are sent
    _handoff(db, "Old Co", 5000, created=START - timedelta(days=200))
    assert [r for r in _run(db, 13) if r["account"] == "Old Co"] == []


def test_plans_lengths_and_tiers_come_from_the_rules(db: Database) -> None:
    _handoff(db, "Tiny", 100)  # tech touch: welcome on day 1, announced on day 0
    assert _brief(_run(db, 0)) == [("Tiny", "due", "welcome", "2026-07-02")]
    quick = replace(
        RULES,
        cadence=replace(
            RULES.cadence, plans={**RULES.cadence.plans, "tech": (("usage_check", 3),)}, remind_before_days=0
        ),
    )
    assert _brief(_run(db, 3, quick)) == [("Tiny", "due", "usage_check", "2026-07-04")]


def test_tier_override_changes_the_plan_and_is_audited(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    with db.session() as s, pytest.raises(service.NotAllowed):
        cadence.set_tier(s, account_name="Acme", tier="tech", actor=Actor("UREP"), clock=FakeClock(START))
    with db.session() as s:
        cadence.set_tier(s, account_name="acme", tier="tech", actor=CSM, clock=FakeClock(START))
    assert _brief(_run(db, 0)) == [("Acme", "due", "welcome", "2026-07-02")]
    with db.session() as s:
        event = s.scalars(select(HandoffEvent).where(HandoffEvent.kind == "tier_changed")).one()
        assert event.details == {"from": "high", "to": "tech"} and event.actor_user_id == "UCSM"
        with pytest.raises(service.Invalid):
            cadence.set_tier(s, account_name="Acme", tier="platinum", actor=CSM, clock=FakeClock(START))


def test_qbrs_follow_onboarding_every_quarter_for_high_touch_only(db: Database) -> None:
    _handoff(db, "Big", 5000)
    _handoff(db, "Mid", 1000)
    for kind, day in ((Kind.KICKOFF, 7), *((Kind.CHECK_IN, d) for d in (14, 21, 28, 42, 56, 90))):
        _log(db, "Big", kind, day)
    for kind, day in ((Kind.KICKOFF, 10), *((Kind.CHECK_IN, d) for d in (30, 60, 90))):
        _log(db, "Mid", kind, day)
    assert _run(db, 76) == []
    assert _brief(_run(db, 77)) == [("Big", "qbr", "qbr", "2026-09-30")]  # day 91, 14 days ahead
    _log(db, "Big", Kind.QBR, 92)
    assert _run(db, 95) == []
    assert _brief(_run(db, 169)) == [("Big", "qbr", "qbr", "2026-12-31")]  # 91 days after the QBR
    # nobody logs it: chased once, then the next quarter comes round on its own
    assert _brief(_run(db, 186)) == [("Big", "qbr_overdue", "qbr", "2026-12-31")]
    assert _brief(_run(db, 260)) == [("Big", "qbr", "qbr", "2027-04-01")]


def test_renewals_at_90_60_and_30_days_even_for_accounts_without_a_handoff(db: Database) -> None:
    with db.session() as s:
        s.add(
            Account(
                name="Ingested KK",
                name_key="ingested kk",
                currency="JPY",
                mrr=Decimal(50000),
                renewal_date=date(2026, 12, 31),
                created_at=START,
                updated_at=START,
            )
        )
    renewal = date(2026, 12, 31)

    def on(d: date) -> list[tuple]:
        return [(r["stage"], r["days_left"], r["to"]) for r in _run(db, (d - DAY0).days)]

    assert on(renewal - timedelta(days=91)) == []
    assert on(renewal - timedelta(days=90)) == [("renewal", 90, None)]  # nobody owns it: channel
    assert on(renewal - timedelta(days=89)) == []
    assert on(renewal - timedelta(days=45)) == [("renewal", 45, None)]  # the 60-day stage, run late
    assert on(renewal - timedelta(days=31)) == []
    assert on(renewal - timedelta(days=30)) == [("renewal", 30, None)]
    assert on(renewal + timedelta(days=1)) == []


def test_one_message_per_recipient_with_all_their_reminders(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    _handoff(db, "Beta", 5000)
    _handoff(db, "Nobody", 5000, csm=None)
    with db.session() as s:
        n = s.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1)) or 0
        queued = reminders.queue(s, DAY0 + timedelta(days=6), RULES, START)
    assert (queued.reminders, queued.messages, queued.unowned) == (3, 2, 1)
    with db.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.id > n).order_by(Outbox.id)).all()
        by_to = {r.payload["recipient"]: [x["account"] for x in r.payload["reminders"]] for r in rows}
    assert by_to == {"UCSM": ["Acme", "Beta"], None: ["Nobody"]}


def test_touches_can_be_logged_after_the_fact_but_not_in_the_future(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    with db.session() as s:
        touch, ms = cadence.log_touch(
            s,
            account_name="Acme",
            kind=Kind.KICKOFF,
            note="",
            actor=CSM,
            clock=FakeClock(START + timedelta(days=10)),
            occurred_at=START + timedelta(days=6),
        )
        assert ms[0].done_on == DAY0 + timedelta(days=6) and touch.logged_at == START + timedelta(days=10)
    with db.session() as s, pytest.raises(cadence.FutureTouch):
        cadence.log_touch(
            s,
            account_name="Acme",
            kind=Kind.CHECK_IN,
            note="",
            actor=CSM,
            clock=FakeClock(START),
            occurred_at=START + timedelta(days=1),
        )


def test_the_remind_command_shows_then_queues_once(tmp_path, monkeypatch, capsys) -> None:
    import json

    import app

    url = f"sqlite:///{tmp_path}/remind.db"
    db = Database(url)
    db.upgrade()
    _handoff(db, "Acme", 5000)
    db.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    day = (DAY0 + timedelta(days=6)).isoformat()
    assert app.main(["remind", "--as-of", day, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        "would queue 1 reminder(s) in 1 message(s)" in out and "2026-07-08  due" in out and "-> UCSM" in out
    )
    assert app.main(["remind", "--as-of", day, "--json"]) == 0
    assert [r["touch"] for r in json.loads(capsys.readouterr().out)] == ["kickoff"]
    assert app.main(["remind", "--as-of", day]) == 0  # already queued by the run before: nothing new
    assert "queued 0 reminder(s)" in capsys.readouterr().out


def test_days_are_the_teams_calendar_days_not_utcs(db: Database) -> None:
    # 08:30 on July 1st in Tokyo is still June 30th in UTC: the plan counts from July 1st
    _handoff(db, "Early Bird", 5000, created=datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    assert _run(db, 5) == []
    assert _brief(_run(db, 6)) == [("Early Bird", "due", "kickoff", "2026-07-08")]


def test_next_touch_is_the_next_milestone_then_the_next_qbr(db: Database) -> None:
    _handoff(db, "Big", 5000)
    _handoff(db, "Small", 100)

    def nxt(name: str, day: int) -> tuple[str, str] | None:
        with db.session() as s:
            account = s.scalars(select(Account).where(Account.name == name)).one()
            found = reminders.next_touch(s, account, DAY0 + timedelta(days=day), RULES)
        return (found[0], found[1].isoformat()) if found else None

    assert nxt("Big", 0) == ("kickoff", "2026-07-08")
    _log(db, "Big", Kind.KICKOFF, 3)
    assert nxt("Big", 4) == ("check_in", "2026-07-15")
    assert nxt("Big", 106) == ("qbr", "2026-09-30")  # onboarding is over: the quarterly rhythm
    assert nxt("Big", 120) == ("qbr", "2026-12-30")  # a missed quarter, no longer chased, rolls on
    assert nxt("Small", 120) is None  # tech touch holds no QBRs


def test_an_automated_welcome_sent_by_another_system_counts_and_silences_the_reminder(db: Database) -> None:
    import io

    from ingest import IngestError, ingest_touches, records

    aid = _handoff(db, "Tiny", 100)  # tech touch: welcome due on day 1
    with db.session() as s:
        s.get(Account, aid).external_id = "T-1"
    text = "account_id,date,kind,note\nT-1,2026-07-01,welcome,sent by the marketing tool\n"

    def send(body: str) -> tuple[int, int]:
        with db.session() as s:
            clock = FakeClock(START + timedelta(hours=5))
            r = ingest_touches(s, records(io.StringIO(body), "csv"), clock=clock, timezone="Asia/Tokyo")
            return r.rows, r.details["skipped"]

    assert send(text) == (1, 0)
    assert send(text) == (0, 1)  # sent again: recorded once
    assert _run(db, 0) == [] and _run(db, 4) == []  # the welcome is done: no reminder, no chase
    with pytest.raises(IngestError) as exc:
        send("account_id,date,kind\nT-1,2026-07-02,welcome\nX-9,2026-07-01,welcome\nT-1,2026-07-01,lunch\n")
    assert [(p.line, p.message.split(" ")[0]) for p in exc.value.problems] == [
        (2, "date"),  # tomorrow, in Tokyo
        (3, "unknown"),
        (4, "kind"),
    ]
    with db.session() as s:
        touch = s.scalars(select(Touch)).one()
        assert (touch.kind, touch.logged_by, touch.note) == (
            "welcome",
            "import",
            "sent by the marketing tool",
        )


def test_a_new_handoff_restarts_onboarding_and_an_empty_plan_means_no_onboarding(db: Database) -> None:
    _handoff(db, "Acme", 5000)
    _log(db, "Acme", Kind.KICKOFF, 5)
    with db.session() as s:  # a year later the account is handed over again (a new product, a new team)
        h = s.scalars(select(Handoff)).one()
        h.status = "accepted"
    _handoff(db, "Acme", 5000, created=START + timedelta(days=400))
    # the kickoff of the first onboarding does not count for the second
    assert _brief(_run(db, 406)) == [("Acme", "due", "kickoff", "2027-08-12")]
    no_tech = replace(RULES, cadence=replace(RULES.cadence, plans={**RULES.cadence.plans, "tech": ()}))
    _handoff(db, "Tiny", 100, created=START + timedelta(days=400))
    assert [r for r in _run(db, 400, no_tech) if r["account"] == "Tiny"] == []


def _crm_account(db: Database, email: str, ext: str = "CRM-1") -> None:
    with db.session() as s:
        s.add(
            Account(
                name="Ingested KK",
                name_key="ingested kk",
                external_id=ext,
                currency="JPY",
                mrr=Decimal(50000),
                renewal_date=date(2026, 12, 31),
                csm_email=email,
                created_at=START,
                updated_at=START,
            )
        )


def test_an_account_from_the_crm_reaches_the_csm_its_csm_email_maps_to(db: Database) -> None:
    from storage.directory import record_lookup

    _crm_account(db, "Hana@Example.com")
    day = (date(2026, 12, 31) - timedelta(days=90) - DAY0).days
    with db.session() as s:  # what bot/directory.py stored from users.lookupByEmail
        record_lookup(s, "hana@example.com", "UHANA", None, START)
    assert [r["to"] for r in _run(db, day)] == ["UHANA"]


def test_an_unmapped_csm_email_leaves_the_reminder_in_the_handoff_channel(db: Database) -> None:
    from storage.directory import NOT_FOUND, record_lookup

    _crm_account(db, "ken@example.com")
    with db.session() as s:
        record_lookup(s, "ken@example.com", None, NOT_FOUND, START)
    day = (date(2026, 12, 31) - timedelta(days=90) - DAY0).days
    assert [r["to"] for r in _run(db, day)] == [None]


def test_the_handoffs_csm_beats_the_csm_email(db: Database) -> None:
    from storage.directory import record_lookup

    aid = _handoff(db, "Acme", 5000, csm="UASSIGNED")
    with db.session() as s:
        s.get(Account, aid).csm_email = "hana@example.com"
        record_lookup(s, "hana@example.com", "UHANA", None, START)
    assert [r["to"] for r in _run(db, 6)] == ["UASSIGNED"]


def test_remind_json_names_accounts_by_their_external_id(tmp_path, monkeypatch, capsys) -> None:
    import json

    import app

    url = f"sqlite:///{tmp_path}/remind.db"
    db = Database(url)
    db.upgrade()
    _crm_account(db, "hana@example.com", ext="SF-0042")
    db.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert app.main(["remind", "--as-of", "2026-10-02", "--json", "--dry-run"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert (r["account_id"], r["name"], r["stage"]) == ("SF-0042", "Ingested KK", "renewal")
    assert "account" not in r


def test_the_remind_command_reads_in_japanese(tmp_path, monkeypatch, capsys) -> None:
    import app

    url = f"sqlite:///{tmp_path}/remind.db"
    db = Database(url)
    db.upgrade()
    _handoff(db, "Acme", 5000)
    db.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BATON_LOCALE", "ja")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    day = DAY0 + timedelta(days=6)
    assert app.main(["remind", "--as-of", day.isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"{day.year}年{day.month}月{day.day}日のリマインダー（ドライラン・記録も送信もしません）：1件"
    )
    assert "  7月8日　期限：キックオフ、Acme → UCSM" in out  # this year's dates without the year
    assert "2026-" not in out and "kickoff" not in out
    assert app.main(["remind", "--as-of", day.isoformat()]) == 0
    assert (
        "：1件をメッセージ1通で送信待ちにしました（うち担当CSMのいない顧客：0件）。"
        in capsys.readouterr().out
    )
