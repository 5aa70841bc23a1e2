"""Alert rules and the scan's no-fatigue rules: one open alert per account and kind, worsening
updates it, cooldown after resolve, snooze; every message goes through the outbox."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from io import StringIO

import pytest
from sqlalchemy import func, select

from alerts import service
from alerts.cli import run_scan
from settings import AlertRules, Rules
from storage import Database
from storage.models import Account, Alert, Outbox, UpsellOpportunity
from tests.alerts.factory import AS_OF, accounts, daily
from tests.clocks import FakeClock

# the rules themselves, with a budget that binds nothing on a 4-account book (the cap is tested in
# tests/alerts/test_budget.py)
_DEFAULT = Rules.load(None)
RULES = replace(_DEFAULT, alerts=replace(_DEFAULT.alerts, budget_per_100_accounts_week=100))


def _scan(db: Database, clock: FakeClock, as_of=AS_OF, rules: Rules = RULES) -> service.ScanResult:
    with db.session() as s:
        return service.scan(s, as_of=as_of, rules=rules, clock=clock)


def _outbox(db: Database) -> list[tuple[str, str]]:
    with db.session() as s:
        return [
            (o.action, (o.payload or {}).get("note", ""))
            for o in s.scalars(select(Outbox).order_by(Outbox.id))
        ]


def _setup(db: Database) -> None:
    accounts(db, ("DROP", 50, "Pro"), ("IDLE", 50, "Pro"), ("FULL", 20, "Pro"), ("OK", 50, "Pro"))
    daily(db, "DROP", "active_users", lambda n: 40 if n >= 7 else 12)  # -70% this week
    daily(db, "IDLE", "active_users", lambda n: 30 if n >= 20 else 0)  # nothing for 20 days
    daily(db, "FULL", "active_users", lambda n: 19 if n >= 7 else 20)  # 100% of 20 seats
    daily(db, "OK", "active_users", lambda n: 35)


def test_each_rule_raises_its_alert_with_reasons_in_numbers(db: Database) -> None:
    _setup(db)
    result = _scan(db, FakeClock())
    got = {(r.account, r.finding.kind): r for r in result.raised}
    assert set(got) == {("DROP", "churn_risk"), ("IDLE", "churn_risk"), ("FULL", "upsell")}
    drop = got[("DROP", "churn_risk")].as_json()
    assert {
        "code": "usage_drop",
        "params": {"metric": "active_users", "recent": 12, "baseline": 40, "pct": 70, "recent_days": 7},
        "text": "active users averaged 12/day over the last 7 days vs 40/day before (−70%)",
    } in drop["reasons"]
    idle = got[("IDLE", "churn_risk")].finding
    assert {"code": "inactive", "params": {"days": 20}} in idle.reasons and idle.severity == "high"
    full = got[("FULL", "upsell")].finding
    assert full.reasons == [{"code": "seats_full", "params": {"active": 20, "seats": 20, "pct": 100}}]
    assert _outbox(db) == [("post", "")] * 3


def test_a_second_scan_posts_nothing_new_and_a_worse_account_updates_its_alert(db: Database) -> None:
    _setup(db)
    clock = FakeClock()
    _scan(db, clock)
    clock.advance(days=1)
    again = _scan(db, clock)
    assert again.raised == [] and again.quiet == {"unchanged": 3}
    daily(db, "FULL", "active_users", lambda n: 40 if n < 7 else 19)  # and now it grows fast too
    result = _scan(db, clock)
    assert [(r.account, r.change) for r in result.raised] == [("FULL", "worsened")]
    assert _outbox(db)[3:] == [("update", ""), ("thread", "worsened")]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 3


def test_resolve_then_cooldown_then_raise_again(db: Database) -> None:
    _setup(db)
    clock = FakeClock()
    first = {r.account: r.alert_id for r in _scan(db, clock).raised}
    with db.session() as s:
        service.resolve(s, alert_id=first["DROP"], actor="UCS", clock=clock)
    clock.advance(days=3)
    assert _scan(db, clock).quiet.get("cooldown") == 1
    clock.advance(days=RULES.alerts.cooldown_days)
    raised = _scan(db, clock).raised
    assert [(r.account, r.change) for r in raised] == [("DROP", "new")]
    with pytest.raises(service.AlreadyResolved), db.session() as s:
        service.resolve(s, alert_id=first["DROP"], actor="UCS", clock=clock)


def test_a_hard_reason_resolved_rests_13_weeks_though_the_account_stays_full(db: Database) -> None:
    """An account at full seats for months: the team resolved it once, and is not told again each
    time the cooldown runs out; after 13 weeks it is."""
    _setup(db)
    clock = FakeClock()
    first = {r.account: r.alert_id for r in _scan(db, clock).raised}
    with db.session() as s:
        service.resolve(s, alert_id=first["FULL"], actor="UCS", clock=clock)
        service.resolve(s, alert_id=first["DROP"], actor="UCS", clock=clock)
    clock.advance(days=RULES.alerts.cooldown_days + 1)
    result = _scan(db, clock)
    assert [r.account for r in result.raised] == ["DROP"]  # a soft rule: the cooldown is its rest
    assert result.quiet.get("resting") == 1
    out = StringIO()
    with db.session() as s:
        service.resolve(s, alert_id=result.raised[0].alert_id, actor="UCS", clock=clock)
    run_scan(db, RULES, as_of=AS_OF, clock=clock, as_json=False, dry_run=True, out=out, err=StringIO())
    assert "1 resolved for the same reason in the last 13 weeks" in out.getvalue()
    clock.advance(days=7 * 13 - RULES.alerts.cooldown_days)
    assert "FULL" in [r.account for r in _scan(db, clock).raised]


def test_snooze_keeps_quiet_until_it_ends(db: Database) -> None:
    _setup(db)
    clock = FakeClock()
    ids = {r.account: r.alert_id for r in _scan(db, clock).raised}
    with db.session() as s:
        service.snooze(s, alert_id=ids["IDLE"], actor="UCS", clock=clock, days=7)
    daily(db, "IDLE", "active_users", lambda n: 30 if n >= 25 else 0)  # worse, but snoozed
    clock.advance(days=2)
    assert _scan(db, clock).quiet.get("snoozed") == 1
    clock.advance(days=6)
    assert [(r.account, r.change) for r in _scan(db, clock).raised] == [("IDLE", "worsened")]
    assert ("thread", "snooze_ended") in _outbox(db)


def test_actions_record_events_and_queue_card_updates(db: Database) -> None:
    _setup(db)
    clock = FakeClock()
    ids = {r.account: r.alert_id for r in _scan(db, clock).raised}
    with db.session() as s:
        service.acknowledge(s, alert_id=ids["DROP"], actor="UCS", clock=clock)
        service.assign_owner(s, alert_id=ids["IDLE"], owner="UCSM", actor="UCS", clock=clock)
        opp = service.hand_to_inside_sales(s, alert_id=ids["FULL"], actor="UCS", clock=clock)
        again = service.hand_to_inside_sales(s, alert_id=ids["FULL"], actor="UCS", clock=clock)
        assert again.id == opp.id  # twice is once
        with pytest.raises(service.WrongKind):
            service.hand_to_inside_sales(s, alert_id=ids["DROP"], actor="UCS", clock=clock)
    with db.session() as s:
        states = dict(s.execute(select(Alert.id, Alert.state)).all())
        assert states == {
            ids["DROP"]: "acknowledged",
            ids["IDLE"]: "acknowledged",
            ids["FULL"]: "acknowledged",
        }
        assert s.scalar(select(func.count()).select_from(UpsellOpportunity)) == 1
        kinds = [e.kind for e in service.events(s, ids["FULL"])]
    assert kinds == ["raised", "handed_to_is"]
    assert _outbox(db)[3:] == [
        ("update", ""),
        ("update", ""),
        ("thread", "assigned"),
        ("update", ""),
        ("handoff_is", ""),
    ]


def test_plan_limit_and_renewal_rules() -> None:
    from accounts.health import Health, Usage
    from alerts.rules import churn, upsell
    from settings import HealthRules

    rules = AlertRules(plan_limits={"Starter": {"projects": 5}})
    h = Health(
        1,
        "A",
        "A",
        55,
        "yellow",
        [],
        Usage(
            recent={"active_users": 1},
            baseline={"active_users": 1},
            recent_max={"projects": 5},
            last_active=AS_OF,
        ),
        10,
        "Starter",
        AS_OF + timedelta(days=45),
    )
    assert upsell(h, rules, HealthRules()).reasons == [
        {"code": "plan_limit", "params": {"metric": "projects", "value": 5, "limit": 5, "plan": "Starter"}}
    ]
    assert churn(h, AS_OF, rules, HealthRules()).reasons == [
        {"code": "renewal_risk", "params": {"days": 45, "date": "2027-01-06", "band": "yellow"}}
    ]


def test_cli_json_and_dry_run(db: Database) -> None:
    _setup(db)
    out = StringIO()
    run_scan(db, RULES, as_of=AS_OF, clock=FakeClock(), as_json=True, dry_run=True, out=out)
    raised = json.loads(out.getvalue())
    assert {(r["account_id"], r["kind"], r["severity"]) for r in raised} == {
        ("DROP", "churn_risk", "medium"),
        ("IDLE", "churn_risk", "high"),
        ("FULL", "upsell", "medium"),
    }
    assert all(r["reasons"] and r["reasons"][0]["text"] for r in raised)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 0  # dry run stored nothing
    run_scan(
        db, RULES, as_of=AS_OF, clock=FakeClock(), as_json=False, dry_run=False, out=(text := StringIO())
    )
    assert "raised 3 alert(s)" in text.getvalue() and "No activity for 20 days" in text.getvalue()


def test_the_scan_keeps_the_days_band_counts_for_the_digest_trend(db: Database) -> None:
    from accounts.health import health_all
    from digest.chart import trend
    from storage.models import HealthDay

    _setup(db)
    _scan(db, FakeClock())
    with db.session() as s:
        kept = s.get(HealthDay, AS_OF)
        expected = {"green": 0, "yellow": 0, "red": 0, "unknown": 0}
        for h in health_all(s, AS_OF, RULES.health):
            expected[h.band] += 1
        assert {b: getattr(kept, b) for b in expected} == expected and sum(expected.values()) == 4
        # the trend reads kept days (a figure no scoring would give proves it) and scores the others
        kept.green = 77
        weeks = trend(s, AS_OF, RULES)
    assert weeks[-1]["week"] == AS_OF.isoformat() and weeks[-1]["green"] == 77
    assert weeks[-2]["green"] + weeks[-2]["yellow"] + weeks[-2]["red"] <= 4  # scored, not kept
    with db.session() as s:  # an account churns; re-scanning that day later must not rewrite it
        s.get(HealthDay, AS_OF).green = expected["green"]
        for account in s.scalars(select(Account)):
            account.status = "churned"
    _scan(db, FakeClock())
    with db.session() as s:
        assert {b: getattr(s.get(HealthDay, AS_OF), b) for b in expected} == expected


# --- data that has not arrived is not zero use ------------------------------------------------------

NOV30 = date(2026, 11, 30)
DEC2 = NOV30 + timedelta(days=2)


def _late_book(db: Database) -> None:
    """A book whose signals end on Nov 30: a healthy account renewing in 46 days (75, green), one at its
    seat limit (an upsell), a steady one, and one whose own feed stopped 10 days before the others'."""
    accounts(db, ("RENEW", 50, "Pro"), renewal="2027-01-15", as_of=NOV30)
    accounts(db, ("FULL", 20, "Pro"), ("OK", 50, "Pro"), ("STOPPED", 50, "Pro"), as_of=NOV30)
    daily(db, "RENEW", "active_users", lambda n: 30 if n >= 7 else 24, as_of=NOV30)
    daily(db, "FULL", "active_users", lambda n: 20, as_of=NOV30)
    daily(db, "OK", "active_users", lambda n: 40, as_of=NOV30)
    daily(db, "STOPPED", "active_users", lambda n: 40 if n >= 10 else None, as_of=NOV30)


def _dry(db: Database, as_of: date) -> tuple[service.ScanResult, dict[tuple[str, str], tuple]]:
    with db.session() as s:
        result = service.scan(s, as_of=as_of, rules=RULES, clock=FakeClock())
        s.rollback()
    return result, {
        (r.account, r.finding.kind): (r.finding.severity, r.finding.score, r.finding.reasons)
        for r in result.raised
    }


def test_days_the_export_has_not_delivered_are_not_scored_as_zero_use(db: Database) -> None:
    from accounts.health import health_all

    _late_book(db)
    with db.session() as s:
        on_30 = {h.external_id: (h.score, h.band, h.drivers) for h in health_all(s, NOV30, RULES.health)}
        on_2 = {h.external_id: (h.score, h.band, h.drivers) for h in health_all(s, DEC2, RULES.health)}
    assert on_30["RENEW"][:2] == (75, "green")

    def usage_only(book: dict) -> dict:
        return {
            k: (band, [d for d in drivers if d.factor != "renewal"]) for k, (_, band, drivers) in book.items()
        }

    # before this fix: RENEW 75 -> 50 (yellow) and FULL lost its upsell
    assert usage_only(on_2) == usage_only(on_30) and on_2["RENEW"][:2] == (74, "green")
    renewal = next(d for d in on_2["RENEW"][2] if d.factor == "renewal")
    assert renewal.params["days"] == 44  # counted from the day asked: a late feed moves no renewal
    _, raised_30 = _dry(db, NOV30)
    now, raised_2 = _dry(db, DEC2)
    assert raised_2 == raised_30  # the same alerts, no "renews in 44 days while health is yellow"
    assert set(raised_2) == {("FULL", "upsell"), ("STOPPED", "churn_risk")}
    assert (now.data.through, now.data.day, now.data.age_days) == (NOV30, NOV30, 2)


def test_late_usage_is_not_hidden_by_other_feeds_and_renewals_count_from_the_day_asked(db: Database) -> None:
    """A daily NPS or ticket feed that keeps arriving while usage is late does not move data-through:
    otherwise the missing usage days read as zero use again."""
    from accounts.health import data_through, health_all
    from alerts.rules import churn

    _late_book(db)
    daily(db, "OK", "support_tickets", lambda n: 1, as_of=DEC2)  # the ticket feed is on time
    with db.session() as s:
        assert data_through(s, DEC2, RULES.health).through == NOV30
        renew = next(h for h in health_all(s, DEC2, RULES.health) if h.external_id == "RENEW")
    assert renew.scored_on == NOV30 and renew.asked_on == DEC2
    red = replace(renew, band="yellow")
    reason = next(
        r for r in churn(red, NOV30, RULES.alerts, RULES.health).reasons if r["code"] == "renewal_risk"
    )
    assert reason["params"]["days"] == 44  # 2027-01-15 from Dec 2, not from the data's Nov 30


def test_an_account_whose_own_feed_stopped_while_the_others_continue_is_inactive(db: Database) -> None:
    from accounts.health import health_all

    _late_book(db)
    with db.session() as s:
        stopped = next(h for h in health_all(s, DEC2, RULES.health) if h.external_id == "STOPPED")
    assert stopped.usage.last_data == NOV30 - timedelta(days=10) and stopped.scored_on == NOV30
    assert {"factor": "inactivity", "code": "inactive", "days": 10} in [
        {"factor": d.factor, "code": d.code, **d.params} for d in stopped.drivers
    ]
    _, raised = _dry(db, DEC2)
    reasons = raised[("STOPPED", "churn_risk")][2]
    drop = next(r for r in reasons if r["code"] == "usage_drop")  # nothing in its last 7 days: -100%
    assert drop["params"]["metric"] == "active_users" and drop["params"]["pct"] == 100


def test_the_scan_stores_and_says_how_far_the_data_goes(db: Database) -> None:
    from storage.models import HealthDay

    _late_book(db)
    out = StringIO()
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=False, dry_run=False, out=out)
    text = out.getvalue()
    assert "Scan as of 2026-12-02, usage data through 2026-11-30" in text and "(2 days old)" in text
    assert "WARNING" not in text and "active users" in text
    with db.session() as s:
        assert {a.as_of for a in s.scalars(select(Alert))} == {NOV30}  # the card says "data through Nov 30"
        assert s.get(HealthDay, NOV30) is not None and s.get(HealthDay, DEC2) is None
    js, err = StringIO(), StringIO()
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=True, dry_run=True, out=js, err=err)
    assert json.loads(js.getvalue()) == [] and "2 days old" in err.getvalue()  # all raised already


def test_a_much_older_book_is_called_out_and_not_alerted_on_as_inactive(db: Database) -> None:
    _late_book(db)
    out, err = StringIO(), StringIO()
    late = NOV30 + timedelta(days=10)
    result = run_scan(db, RULES, as_of=late, clock=FakeClock(), as_json=True, dry_run=True, out=out, err=err)
    assert "WARNING: usage data is 10 days old" in err.getvalue() and "2026-11-30" in err.getvalue()
    raised = json.loads(out.getvalue())
    assert {r["account_id"] for r in raised} == {"FULL", "STOPPED"}  # no one else "inactive for 10 days"
    assert all(r["data_through"] == "2026-11-30" for r in raised) and result.data.stale(RULES.health)
    text = StringIO()
    run_scan(db, RULES, as_of=late, clock=FakeClock(), as_json=False, dry_run=True, out=text)
    assert "WARNING: usage data is 10 days old" in text.getvalue()


def test_health_output_carries_data_through(db: Database) -> None:
    from alerts.cli import print_health

    _late_book(db)
    out = StringIO()
    print_health(db, RULES, as_of=DEC2, as_json=True, out=out, err=StringIO())
    rows = {r["account_id"]: r for r in json.loads(out.getvalue())}
    assert rows["OK"]["data_through"] == "2026-11-30" and rows["STOPPED"]["last_data"] == "2026-11-20"
    print_health(db, RULES, as_of=DEC2, as_json=False, out=(text := StringIO()))
    lines = text.getvalue().splitlines()
    assert lines[0] == "Health as of 2026-12-02, usage data through 2026-11-30"
    assert any("STOPPED" in line and "own data through 2026-11-20" in line for line in lines)


def test_a_new_alert_is_owned_by_the_accounts_csm_assigned_or_mapped_from_csm_email(db: Database) -> None:
    from storage.directory import record_lookup

    _setup(db)
    with db.session() as s:
        by_ext = {a.external_id: a for a in s.scalars(select(Account))}
        by_ext["IDLE"].csm_email = "hana@example.com"
        by_ext["DROP"].csm_user_id, by_ext["DROP"].csm_email = "UASSIGNED", "hana@example.com"
        record_lookup(s, "hana@example.com", "UHANA", None, FakeClock()())
    _scan(db, FakeClock())
    with db.session() as s:
        owners = {(a.account.external_id, a.kind): a.owner_user_id for a in s.scalars(select(Alert))}
    assert owners == {
        ("IDLE", "churn_risk"): "UHANA",
        ("DROP", "churn_risk"): "UASSIGNED",
        ("FULL", "upsell"): None,
    }


def test_the_scan_reports_each_account_scored_to_a_progress_callback(db: Database) -> None:
    _setup(db)
    seen: list[int] = []
    with db.session() as s:
        result = service.scan(s, as_of=AS_OF, rules=RULES, clock=FakeClock(), progress=seen.append)
    assert seen == [1, 2, 3, 4] and result.accounts == 4
