"""Health scores from hand-made usage: each factor, the bands, and the drivers that explain them."""

from __future__ import annotations

from datetime import date, timedelta

from accounts.health import Usage, health_all, score
from settings import HealthRules
from storage import Database
from tests.alerts.factory import AS_OF, accounts, daily

RULES = HealthRules()


def test_a_steady_well_used_account_is_green_with_no_drivers() -> None:
    u = Usage(
        recent={"active_users": 40, "logins": 100},
        baseline={"active_users": 40, "logins": 100},
        last_active=AS_OF,
    )
    assert score(u, seats=50, renewal_date=date(2027, 6, 1), as_of=AS_OF, rules=RULES) == (100, "green", [])


def test_a_drop_against_the_accounts_own_baseline_costs_points_in_proportion() -> None:
    u = Usage(recent={"active_users": 30}, baseline={"active_users": 40}, last_active=AS_OF)  # -25%
    s, band, drivers = score(u, seats=40, renewal_date=None, as_of=AS_OF, rules=RULES)
    assert (s, band) == (85, "green")  # 30 points x (25% / 50%) = 15
    assert drivers[0].code == "usage_drop" and drivers[0].params["pct"] == 25


def test_inactivity_low_utilization_nps_and_support_add_up_to_red() -> None:
    u = Usage(
        recent={"active_users": 2, "support_tickets": 3 / 7},
        baseline={"active_users": 2, "support_tickets": 1 / 28 * 1},
        last_active=AS_OF - timedelta(days=15),
        latest={"nps": 5},
    )
    s, band, drivers = score(u, seats=50, renewal_date=AS_OF + timedelta(days=30), as_of=AS_OF, rules=RULES)
    factors = {d.factor: round(d.points, 1) for d in drivers}
    assert factors["inactivity"] == 25 and factors["seat_utilization"] == 20 and factors["nps"] == 10
    assert factors["support"] == 5 and factors["renewal"] == round(10 * (1 - 30 / 90), 1)
    assert (s, band) == (33, "red")


def test_bands_follow_the_configured_thresholds() -> None:
    rules = HealthRules(green=90, yellow=80)
    u = Usage(recent={"active_users": 30}, baseline={"active_users": 40}, last_active=AS_OF)
    assert score(u, seats=40, renewal_date=None, as_of=AS_OF, rules=rules)[1] == "yellow"


def test_health_all_reads_the_windows_from_the_database(db: Database) -> None:
    accounts(db, ("A1", 50, "Pro"), ("A2", 50, "Pro"), ("A3", 50, "Pro"))
    daily(db, "A1", "active_users", lambda n: 40)  # steady
    daily(db, "A2", "active_users", lambda n: 40 if n >= 7 else 10)  # fell to a quarter this week
    with db.session() as s:
        by_ext = {h.external_id: h for h in health_all(s, AS_OF, RULES)}
    assert by_ext["A1"].band == "green" and by_ext["A1"].usage.recent["active_users"] == 40
    a2 = by_ext["A2"]
    assert a2.usage.recent["active_users"] == 10 and a2.usage.baseline["active_users"] == 40
    assert a2.drivers[0].code == "usage_drop" and a2.drivers[0].params["pct"] == 75
    assert by_ext["A3"].band == "unknown" and by_ext["A3"].score is None  # never sent data


def test_data_after_the_as_of_date_is_ignored(db: Database) -> None:
    accounts(db, ("A1", 50, "Pro"))
    daily(db, "A1", "active_users", lambda n: 40)
    daily(db, "A1", "active_users", lambda n: 0, days=5, as_of=AS_OF + timedelta(days=5))  # the future
    with db.session() as s:
        (h,) = list(health_all(s, AS_OF, RULES))
    assert h.band == "green" and h.usage.last_active == AS_OF


def test_an_account_quiet_since_before_the_windows_gets_its_real_idle_days(db: Database) -> None:
    accounts(db, ("GONE", 50, "Pro"), ("NEVER", 50, "Pro"), ("OK", 50, "Pro"))
    daily(db, "GONE", "active_users", lambda n: 30 if n >= 50 else None, days=80)  # last active 50 days ago
    daily(db, "OK", "active_users", lambda n: 40)  # the book's feed goes on: GONE's own feed stopped
    with db.session() as s:
        by_ext = {h.external_id: h for h in health_all(s, AS_OF, RULES)}
    gone = by_ext["GONE"]
    assert gone.usage.last_active == AS_OF - timedelta(days=50)
    assert gone.drivers[0].code == "inactive" and gone.drivers[0].params == {"days": 50}
    assert by_ext["NEVER"].band == "unknown"


def test_a_new_customer_is_not_mistaken_for_growth_or_decline(db: Database) -> None:
    accounts(db, ("NEW", 40, "Pro"), ("YOUNG", 40, "Pro"))
    daily(db, "NEW", "active_users", lambda n: 30, days=10)  # onboarded ten days ago, steady
    daily(db, "YOUNG", "active_users", lambda n: 30, days=20)
    with db.session() as s:
        by_ext = {h.external_id: h for h in health_all(s, AS_OF, RULES)}
    assert by_ext["NEW"].usage.baseline["active_users"] == 0  # 3 days of baseline: too few to compare
    young = by_ext["YOUNG"].usage
    assert young.recent["active_users"] == 30 and young.baseline["active_users"] == 30  # 13 real days
    assert by_ext["YOUNG"].drivers == [] and by_ext["NEW"].band == "green"


def test_usage_metrics_can_carry_weights(tmp_path) -> None:
    from settings import Rules

    path = tmp_path / "r.yml"
    path.write_text("health:\n  usage_metrics: {active_users: 3, logins: 1}\n")
    rules = Rules.load(path).health
    assert rules.usage_metrics == ("active_users", "logins") and rules.usage_weights["active_users"] == 3
    u = Usage(
        recent={"active_users": 40, "logins": 50},
        baseline={"active_users": 40, "logins": 100},
        last_active=AS_OF,
    )
    _, _, drivers = score(u, seats=50, renewal_date=None, as_of=AS_OF, rules=rules)
    assert drivers[0].params["metric"] == "logins" and round(drivers[0].points, 1) == 7.5  # 30 x 1/4
