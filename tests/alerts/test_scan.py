"""Alert rules and the scan's no-fatigue rules: one open alert per account and kind, worsening
updates it, cooldown after resolve, snooze; every message goes through the outbox."""

from __future__ import annotations

import json
from datetime import timedelta
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

RULES = Rules.load(None)


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
        "text": "active_users averages 12/day over the last 7 days vs 40/day before (-70%)",
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
    from alerts.health import Health, Usage
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
    assert "raised 3 alert(s)" in text.getvalue() and "no activity for 20 days" in text.getvalue()


def test_the_scan_keeps_the_days_band_counts_for_the_digest_trend(db: Database) -> None:
    from alerts.health import health_all
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
