"""The scan with a trained model: alerts for the accounts the model ranks highest, down to twice the
base rate, within the budget over 4 weeks, hard rules counted in it; the cards' reasons carry the
probability and the drivers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from alerts import budget, service
from alerts.rules import CHURN, UPSELL, Finding
from model import store
from model.service import train_models
from model.train import allowance, week_cap, window_cap
from settings import ConfigError, Rules
from storage import Database
from storage.models import Account, Alert
from tests.clocks import FakeClock
from tests.model.book import NOW, build

# the small book's history is short: these tests are about the budget once the model decides
_LOADED = Rules.load(None)
RULES = replace(_LOADED, alerts=replace(_LOADED.alerts, model_min_events=1, model_min_weeks=1))
BEATS = {
    "model": {"auc_30d": 0.9, "top_decile_lift_30d": 5.0},
    "rules": {"auc_30d": 0.7, "top_decile_lift_30d": 2.0},
}


def _rules(per_100: float, churn: float = 75) -> Rules:
    alerts = replace(
        RULES.alerts,
        budget_per_100_accounts_week=per_100,
        budget_shares={"churn": churn, "upsell": 100 - churn},
    )
    return replace(RULES, alerts=alerts)


def trust(db: Database, figures: dict | None = None) -> None:
    """Give the stored churn model the backtest ``figures`` (default: one that beat the rules)."""
    with db.session() as s:
        row = store.latest_row(s, "churn")
        assert row is not None
        row.backtest = figures or BEATS


def _trained(db: Database, *, trusted: bool = True):
    book = build(db)
    with db.session() as s:
        train_models(s, book.end, RULES.health, now=NOW, backtest=False)
    if trusted:
        trust(db)
    return book


def _clock(book) -> FakeClock:
    return FakeClock(
        datetime.combine(book.end + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=1)
    )


def test_the_model_flags_the_quiet_account_and_not_the_noisy_one(db: Database) -> None:
    book = _trained(db)
    with db.session() as s:
        result = service.scan(s, as_of=book.end, rules=_rules(20), clock=_clock(book))
    churn = {r.account: r for r in result.raised if r.finding.kind == CHURN}
    assert result.decided_by == {CHURN: "model", UPSELL: "rules"}
    assert "QUIET" in churn and "NOISY" not in churn
    reason = churn["QUIET"].as_json()["reasons"][0]
    assert reason["code"] == "model_churn" and reason["params"]["drivers"]
    assert reason["text"].startswith(f"churn probability {reason['params']['pct']}%")
    assert reason["params"]["drivers"][0]["text"] in reason["text"]
    with db.session() as s:  # every reading carries the model's floor, which the scan alerts down to
        model = store.latest(s, "churn")
        scored = budget.score_accounts(s, book.end, _rules(20))[CHURN]
    assert model is not None and model.floor is not None and model.floor < model.threshold
    assert {sc.floor for sc in scored.values()} == {model.floor}


def test_the_week_is_capped_at_the_budget_every_raised_alert_counted(db: Database) -> None:
    book = _trained(db)
    rules = _rules(4)
    with db.session() as s:
        clock = _clock(book)
        first = service.scan(s, as_of=book.end, rules=rules, clock=clock)
        accounts = first.accounts
        cap = week_cap(budget.rate(accounts, rules, CHURN))
        new = [r for r in first.raised if r.finding.kind == CHURN and r.change == "new"]
        assert len(new) == cap > 0 and first.quiet["over_budget"] > 0
        s.commit()
    clock.advance(days=1)
    with db.session() as s:  # the next day, same week: the open alerts used the week's budget
        second = service.scan(s, as_of=book.end, rules=rules, clock=clock)
        again = [r for r in second.raised if r.finding.kind == CHURN and r.change == "new"]
        assert again == [] and second.quiet["over_budget"] > 0


def _scored(p: float, threshold: float = 0.2) -> budget.Scored:
    return budget.Scored(p, threshold, 1, {"code": "model_churn", "params": {"pct": p * 100}})


def test_hard_rules_raise_and_count_in_the_budget() -> None:
    idle = Finding(1, CHURN, "high", 30, [{"code": "inactive", "params": {"days": 20}}])
    soft = Finding(2, CHURN, "medium", 60, [{"code": "usage_drop", "params": {}}])
    scored = {3: _scored(0.9), 4: _scored(0.8), 5: _scored(0.1)}
    got, cut = budget.select_findings([idle, soft], scored, CHURN, left=2, blocked=set(), open_ids=set())
    assert [f.account_id for f in got] == [1, 3] and cut == 1  # a soft rule alone raises nothing
    got, _ = budget.select_findings([idle], scored, CHURN, left=0, blocked=set(), open_ids=set())
    assert [f.account_id for f in got] == [1]  # over the budget, the hard rule still raises


def test_while_the_rules_decide_the_budget_holds_worst_first_hard_rules_always() -> None:
    idle = Finding(1, CHURN, "high", 30, [{"code": "inactive", "params": {"days": 20}}])
    red = Finding(2, CHURN, "high", 20, [{"code": "health_red", "params": {}}])
    drop = Finding(3, CHURN, "medium", 40, [{"code": "usage_drop", "params": {}}])
    worse_drop = Finding(4, CHURN, "medium", 25, [{"code": "usage_drop", "params": {}}])
    kw = {"blocked": set(), "open_ids": set()}
    got, cut = budget.select_by_rules([drop, idle, worse_drop, red], CHURN, left=2, **kw)
    assert sorted(f.account_id for f in got) == [1, 2] and cut == 2  # the hard rule, the worst soft one
    got, cut = budget.select_by_rules([drop, worse_drop], CHURN, left=2, **kw)
    assert [f.account_id for f in got] == [4, 3] and cut == 0
    got, cut = budget.select_by_rules([idle, drop], CHURN, left=0, **kw)
    assert [f.account_id for f in got] == [1] and cut == 1  # the week is full: only the hard rule
    got, _ = budget.select_by_rules([drop], CHURN, left=0, **{**kw, "open_ids": {3}})
    assert [f.account_id for f in got] == [3]  # an open alert is updated without a slot
    grow = Finding(7, UPSELL, "medium", 90, [{"code": "usage_growth", "params": {}}])
    grow_sick = Finding(8, UPSELL, "medium", 50, [{"code": "usage_growth", "params": {}}])
    got, _ = budget.select_by_rules([grow_sick, grow], UPSELL, left=1, **kw)
    assert [f.account_id for f in got] == [7]  # upsell: the healthiest account first


def test_the_budget_holds_over_four_weeks_at_most_its_rate_rounded_up_in_one() -> None:
    rules = _rules(2)  # 300 accounts: churn 4.5 a week, upsell 1.5

    def cap(accounts: int, kind: str, r: Rules = rules) -> int:
        return week_cap(budget.rate(accounts, r, kind))

    assert cap(300, CHURN) == 5 and cap(300, UPSELL) == 2
    assert cap(600, CHURN) == 9 and cap(600, UPSELL) == 3
    # a week's cap rounded down lost a third of upsell's share (1 a week for 1.5); over 4 weeks it is 6
    weeks: list[int] = []
    for _ in range(12):
        weeks.append(allowance(1.5, [0, *weeks[::-1][:3]]))
    assert max(weeks) == 2 and sum(weeks[-8:]) == 12  # 1.5 a week on average, never 2 + 2 + 2 + 2
    assert allowance(1.5, [2, 0, 0, 0]) == 0  # this week already holds the week's most
    # a burst of 50 hard-rule alerts last week costs the window one full week, not the month
    assert allowance(1.5, [0, 50, 0, 0]) == 2 and allowance(1.5, [0, 50, 2, 2]) == 0
    # a 40-account team: 0.6 churn alerts a week, 2 in 4 weeks; upsell 0.2, still one in 4 weeks
    assert cap(40, CHURN) == 1 and window_cap(0.6) == 2 and window_cap(0.2) == 1
    assert allowance(0.2, [0, 0, 1, 0]) == 0 and allowance(0.2, [0, 0, 0, 0]) == 1
    assert cap(0, CHURN) == 0 and cap(40, UPSELL, _rules(2, churn=100)) == 0


def _raised(s, now: datetime, name: str, kind: str, state: str, days_ago: int) -> int:
    """An account with one alert of ``kind`` raised ``days_ago`` days before ``now``; its id."""
    account = Account(name=name, name_key=name.lower(), external_id=name, created_at=now, updated_at=now)
    s.add(account)
    s.flush()
    at = now - timedelta(days=days_ago)
    s.add(
        Alert(
            account_id=account.id,
            kind=kind,
            state=state,
            severity="medium",
            reasons=[],
            as_of=at.date(),
            raised_at=at,
            updated_at=at,
        )
    )
    s.flush()
    return account.id


def test_room_counts_every_alert_raised_in_the_window_resolved_ones_too(db: Database) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    rules = _rules(2)  # 300 accounts: churn 4.5 a week (5 in any 7 days, 18 in 4 weeks)
    with db.session() as s:
        for n, (days_ago, state) in enumerate([(1, "resolved"), (2, "open")] + [(10, "resolved")] * 14):
            _raised(s, now, f"W{n}", CHURN, state, days_ago)
        # this week 2 (a week holds 5), last week 14 (a burst: it costs the window one week, 5 of 18)
        assert budget.room(s, now, CHURN, 300, rules) == 3
        assert budget.room(s, now + timedelta(days=3), CHURN, 300, rules) == 3
        assert budget.room(s, now + timedelta(days=19), CHURN, 300, rules) == 5  # the window moved on
        assert budget.room(s, now, UPSELL, 300, rules) == 2


def test_the_budget_counts_the_teams_weeks_not_the_hour_the_scan_ran(db: Database) -> None:
    """Last Monday's scan ran at 09:00 in Tokyo, this one at 07:00: its alerts are last week's."""
    monday_9 = datetime(2026, 6, 1, 0, tzinfo=UTC)  # 09:00 in Tokyo
    rules = _rules(2)  # 300 accounts: upsell 1.5 a week, at most 2 in one
    with db.session() as s:
        _raised(s, monday_9, "U0", UPSELL, "open", 0)
        _raised(s, monday_9, "U1", UPSELL, "open", 0)
        next_monday_7 = monday_9 + timedelta(days=7, hours=-2)
        assert budget.room(s, monday_9 + timedelta(days=6), UPSELL, 300, rules) == 0  # Sunday: same week
        assert budget.room(s, next_monday_7, UPSELL, 300, rules) == 2  # a new week: 2 of 6 spent


def test_the_model_fills_the_week_down_to_twice_the_base_rate_not_to_its_threshold() -> None:
    def at(p: float) -> budget.Scored:  # base rate 5 %: the floor is 10 %, the stored threshold 25 %
        return budget.Scored(p, 0.25, 1, {"code": "model_churn", "params": {"pct": p * 100}}, floor=0.1)

    scored = {1: at(0.5), 2: at(0.3), 3: at(0.12), 4: at(0.09), 5: at(0.05)}
    got, cut = budget.select_findings([], scored, CHURN, left=5, blocked=set(), open_ids=set())
    assert [f.account_id for f in got] == [1, 2, 3] and cut == 0  # 4 and 5 are below the floor
    assert [f.severity for f in got] == ["high", "medium", "medium"]  # high: twice the threshold
    got, cut = budget.select_findings([], scored, CHURN, left=1, blocked=set(), open_ids=set())
    assert [f.account_id for f in got] == [1] and cut == 1  # held back: 2 (over the threshold), not 3


def test_the_floor_is_twice_the_base_rate_and_always_reachable() -> None:
    import numpy as np

    from model.train import LinearModel

    def model(training: dict) -> LinearModel:
        e = np.zeros(0)
        return LinearModel("churn", [], [], [], e, e, e, e, 0.0, e, threshold=0.4, training=training)

    assert model({"rows": 1000, "positives": 50}).floor == pytest.approx(0.1)
    assert model({"rows": 1000, "positives": 600}).floor == pytest.approx(0.8)  # halfway to certain
    assert model({"rows": 1000, "positives": 0}).floor == 0.4  # no outcome: the stored threshold
    assert model({}).floor == 0.4  # stored before the counts were kept
    assert model({"rows": 1000, "positives": 50, "class_weight": "balanced"}).floor == 0.4
    # a card never reads "low" for an alert: elevated from the floor where churn is rare
    assert budget.band(0.07) == "low" and budget.band(0.07, 0.06) == "elevated"
    assert budget.band(0.35, 0.06) == "high"


def test_an_open_alert_keeps_its_place_without_a_new_slot() -> None:
    scored = {3: _scored(0.9), 4: _scored(0.8)}
    got, cut = budget.select_findings([], scored, CHURN, left=0, blocked=set(), open_ids={3})
    assert [f.account_id for f in got] == [3] and cut == 1


def test_an_account_alerted_in_the_last_13_weeks_takes_no_model_slot() -> None:
    rules = _rules(4, churn=50)  # 100 accounts: 2 churn alerts a week
    idle = Finding(3, CHURN, "high", 30, [{"code": "inactive", "params": {"days": 20}}])
    scored = {3: _scored(0.95), 4: _scored(0.9), 5: _scored(0.8), 6: _scored(0.7)}
    kw = {"left": week_cap(budget.rate(100, rules, CHURN)), "blocked": set(), "open_ids": set()}
    got, _ = budget.select_findings([], scored, CHURN, rest=budget.Rest(frozenset({3, 4})), **kw)
    assert [f.account_id for f in got] == [5, 6]  # the slots go to accounts the team has not seen
    got, _ = budget.select_findings([idle], scored, CHURN, rest=budget.Rest(frozenset({3, 4})), **kw)
    assert [f.account_id for f in got] == [3, 5]  # a hard rule still raises for a rested account


def _resolved(s, now: datetime, account_id: int, kind: str, codes: list[str], days_ago: int) -> None:
    """A resolved alert of ``kind`` with reasons ``codes``, raised and resolved ``days_ago`` days ago."""
    at = now - timedelta(days=days_ago)
    reasons = [{"code": c, "params": {}} for c in codes]
    s.add(
        Alert(
            account_id=account_id,
            kind=kind,
            state="resolved",
            severity="medium",
            reasons=reasons,
            as_of=at.date(),
            raised_at=at - timedelta(days=14),
            resolved_at=at,
            updated_at=at,
        )
    )
    s.flush()


def test_rested_counts_resolved_alerts_raised_in_the_last_13_weeks(db: Database) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with db.session() as s:
        rested = _raised(s, now, "R0", CHURN, "resolved", 30)
        s.execute(update(Alert).values(resolved_at=now - timedelta(days=16)))
        _raised(s, now, "R1", CHURN, "resolved", 100)  # 14+ weeks ago: free again
        _raised(s, now, "R2", CHURN, "open", 30)  # open: updated in place, not rested
        other = _raised(s, now, "R3", UPSELL, "resolved", 30)
        s.execute(update(Alert).where(Alert.resolved_at.is_(None)).values(resolved_at=Alert.raised_at))
        assert budget.rested(s, now, CHURN).accounts == {rested}
        assert budget.rested(s, now, UPSELL).accounts == {other}


def test_rested_keeps_the_hard_reasons_resolved_in_the_last_13_weeks(db: Database) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with db.session() as s:
        full, idle, old = (_raised(s, now, n, UPSELL, "open", 1) for n in ("F", "I", "O"))
        _resolved(s, now, full, UPSELL, ["seats_full", "usage_growth"], 20)
        _resolved(s, now, idle, CHURN, ["inactive", "model_churn"], 80)
        _resolved(s, now, old, UPSELL, ["plan_limit"], 92)  # resolved 13+ weeks ago: free again
        upsell = budget.rested(s, now, UPSELL)
        assert upsell.codes == {full: {"seats_full"}}  # soft reasons do not rest
        assert upsell.told == {full: {"seats_full"}, old: {"plan_limit"}}  # the team was told, ever
        churn = budget.rested(s, now, CHURN)
        assert churn.codes == churn.told == {idle: {"inactive"}}
        assert churn.accounts == set()  # raised 94 days ago: the model may alert it again


def test_a_hard_reason_resolved_in_the_last_13_weeks_does_not_raise_again() -> None:
    full = Finding(1, UPSELL, "medium", 80, [{"code": "seats_full", "params": {}}])
    both = Finding(
        2, UPSELL, "high", 85, [{"code": "seats_full", "params": {}}, {"code": "usage_growth", "params": {}}]
    )
    limit = Finding(3, UPSELL, "medium", 70, [{"code": "plan_limit", "params": {}}])
    fresh = Finding(4, UPSELL, "medium", 75, [{"code": "seats_full", "params": {}}])
    resolved = {a: frozenset({"seats_full"}) for a in (1, 2, 3)}
    rest = budget.Rest(codes=resolved, told=resolved)
    got, resting = budget.rest_hard([full, both, limit, fresh], rest, open_ids=set())
    assert resting == 2  # accounts 1 and 2 raise no hard-rule alert this week
    assert [(f.account_id, sorted(f.codes)) for f in got] == [
        (2, ["usage_growth"]),  # the soft reason is left, to compete for the budget
        (3, ["plan_limit"]),  # a different hard reason still raises
        (4, ["seats_full"]),  # an account the team has not resolved it for
    ]
    # an account whose alert is still open is updated with everything: that takes no slot
    got, resting = budget.rest_hard([full], rest, open_ids={1})
    assert got == [full] and resting == 0
    # under the rules: the rested account's soft reason waits for the budget like any other
    got, cut = budget.select_by_rules(
        budget.rest_hard([both, fresh], rest, set())[0],
        UPSELL,
        left=0,
        blocked=set(),
        open_ids=set(),
        rest=rest,
    )
    assert [f.account_id for f in got] == [4] and cut == 1
    # under the model: a rested hard reason is no hard finding, so it takes no slot ahead of the model
    scored = {5: _scored(0.9)}
    got, _ = budget.select_findings(
        budget.rest_hard([full], rest, set())[0],
        scored,
        UPSELL,
        left=1,
        blocked=set(),
        open_ids=set(),
        rest=rest,
    )
    assert [f.account_id for f in got] == [5]


def test_a_hard_reason_resolved_longer_ago_raises_again_only_within_the_budget() -> None:
    """An account full on seats for a year was told and resolved: after its 13 weeks' rest the reason
    comes back as a repeat, after the model's picks, where a reason never told still raises always."""
    told = budget.Rest(told={1: frozenset({"seats_full"}), 2: frozenset({"seats_full"})})
    full = Finding(1, UPSELL, "medium", 80, [{"code": "seats_full", "params": {}}])
    again = Finding(2, UPSELL, "high", 85, [{"code": "seats_full", "params": {}}])
    limit = Finding(
        1, UPSELL, "medium", 80, [{"code": "seats_full", "params": {}}, {"code": "plan_limit", "params": {}}]
    )
    new = Finding(3, UPSELL, "medium", 75, [{"code": "seats_full", "params": {}}])
    scored = {5: _scored(0.9), 6: _scored(0.1)}
    kw = {"blocked": set(), "open_ids": set(), "rest": told}
    got, cut = budget.select_findings([full, again, new], scored, UPSELL, left=3, **kw)
    assert [f.account_id for f in got] == [3, 5, 2] and cut == 1  # new, the model's, the worse repeat
    got, cut = budget.select_findings([full, new], scored, UPSELL, left=0, **kw)
    assert [f.account_id for f in got] == [3] and cut == 2  # the week is full: the new one; 5 and 1 wait
    got, _ = budget.select_findings([limit], scored, UPSELL, left=0, **kw)
    assert [f.account_id for f in got] == [1]  # a plan limit it was never told of: raises always
    got, _ = budget.select_findings([full], scored, UPSELL, left=0, **{**kw, "open_ids": {1}})
    assert [f.account_id for f in got] == [1]  # an open alert is updated without a slot
    # the model's pick of a repeating account takes one slot and carries its hard reason
    got, _ = budget.select_findings([full], {1: _scored(0.9)}, UPSELL, left=1, **kw)
    assert [(f.account_id, [r["code"] for r in f.reasons]) for f in got] == [
        (1, ["model_churn", "seats_full"])
    ]
    # under the rules the repeat is one more finding for the budget, ranked with the others
    got, cut = budget.select_by_rules([full, new], UPSELL, left=0, **kw)
    assert [f.account_id for f in got] == [3] and cut == 1
    got, cut = budget.select_by_rules([full, new], UPSELL, left=1, **kw)
    assert [f.account_id for f in got] == [3] and cut == 1  # the new one took the week's slot
    got, cut = budget.select_by_rules([full, new], UPSELL, left=2, **kw)
    assert sorted(f.account_id for f in got) == [1, 3] and cut == 0


def test_inactive_becoming_inactive_long_raises_though_inactive_was_resolved() -> None:
    long = Finding(1, CHURN, "high", 20, [{"code": "inactive_long", "params": {"days": 90}}])
    rest = budget.Rest(codes={1: frozenset({"inactive"})})
    got, resting = budget.rest_hard([long], rest, open_ids=set())
    assert got == [long] and resting == 0


@pytest.mark.parametrize(
    "alerts",
    [
        {"budget_per_100_accounts_week": 0},
        {"budget_shares": {"churn": 80, "upsell": 30}},
        {"budget_shares": {"churn": 100}},
    ],
)
def test_a_bad_budget_setting_is_a_clear_error(tmp_path, alerts) -> None:
    import yaml

    path = tmp_path / "baton.yml"
    path.write_text(yaml.safe_dump({"alerts": alerts}))
    with pytest.raises(ConfigError, match="budget"):
        Rules.load(path)


def test_health_json_adds_the_churn_probability_and_keeps_its_fields(db: Database) -> None:
    import json
    from io import StringIO

    from alerts.cli import print_health

    book = _trained(db)
    out = StringIO()
    print_health(db, RULES, as_of=book.end, as_json=True, out=out, err=StringIO())
    rows = {r["account_id"]: r for r in json.loads(out.getvalue())}
    quiet, noisy = rows["QUIET"], rows["NOISY"]
    assert {"score", "band", "drivers", "churn_probability", "churn_drivers"} <= set(quiet)
    assert 0 <= quiet["score"] <= 100 and quiet["churn_probability"] > 3 * noisy["churn_probability"]
    assert quiet["churn_drivers"][0]["text"] and quiet["churn_drivers"][0]["text_ja"]


def test_the_model_scores_the_same_after_a_restart(db: Database) -> None:
    book = _trained(db)
    with db.session() as s:
        before = {a: v.probability for a, v in budget.score_accounts(s, book.end, RULES)[CHURN].items()}
    db.dispose()
    again = Database(db.url)  # a new process: the database is all it has
    with again.session() as s:
        after = {a: v.probability for a, v in budget.score_accounts(s, book.end, RULES)[CHURN].items()}
    again.dispose()
    assert after == before and len(after) > 0


def test_app_scan_trains_a_missing_model_then_alerts_on_it(db: Database) -> None:
    import json
    from io import StringIO

    from alerts.cli import run_scan
    from model import store

    book = build(db)
    out = StringIO()
    result = run_scan(
        db,
        _rules(20),
        as_of=book.end,
        clock=_clock(book),
        as_json=True,
        dry_run=False,
        out=out,
        err=StringIO(),
    )
    with db.session() as s:
        assert store.latest_row(s, "churn") is not None
    assert result.decided_by[CHURN] == "model"
    rows = json.loads(out.getvalue())
    assert rows and {"account_id", "kind", "severity", "score", "change", "reasons"} <= set(rows[0])


# --- cold start and the switch -------------------------------------------------------------------


def _decisions(db: Database) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    from storage.models import ModelDecision

    with db.session() as s:
        return [
            (d.kind, d.decided_by, d.why) for d in s.scalars(select(ModelDecision).order_by(ModelDecision.id))
        ]


def test_until_the_history_holds_enough_churns_the_rules_decide_and_the_card_says_so(db: Database) -> None:
    book = _trained(db)  # trusted, but trained on fewer churns and weeks than the team's setting asks
    strict = replace(_LOADED, alerts=replace(_LOADED.alerts, model_min_events=500, model_min_weeks=26))
    with db.session() as s:
        result = service.scan(s, as_of=book.end, rules=strict, clock=_clock(book))
    assert result.decided_by[CHURN] == "rules" and result.decided_why[CHURN] == "cold_start"
    assert _decisions(db) == []  # the rules decided from the start: no switch to announce
    raised = [r for r in result.raised if r.finding.kind == CHURN]
    assert raised, "the book's quiet account still gets the rules' alert"
    note = raised[0].as_json()["reasons"][-1]
    assert note["code"] == "rules_decide" and note["params"]["churns"] == 500
    assert note["text"].startswith("The rules decide until the history holds 500 churns over 26 weeks")


def test_a_model_whose_backtest_does_not_beat_the_rules_does_not_decide(db: Database) -> None:
    book = _trained(db, trusted=False)
    worse = {
        "model": {"auc_30d": 0.6, "top_decile_lift_30d": 5.0},
        "rules": {"auc_30d": 0.7, "top_decile_lift_30d": 2.0},
    }
    trust(db, worse)
    with db.session() as s:
        result = service.scan(s, as_of=book.end, rules=RULES, clock=_clock(book))
    assert (result.decided_by[CHURN], result.decided_why[CHURN]) == ("rules", "rules_better")
    with db.session() as s:
        row = store.latest_row(s, "churn")
        assert budget.decide(row, CHURN, RULES).why == "rules_better"
        row.backtest = {}
        assert budget.decide(row, CHURN, RULES).why == "no_backtest"


def test_the_switch_is_recorded_once_and_announced_once_in_the_digest(db: Database) -> None:
    from jobs.scheduler import Jobs
    from settings import Settings
    from storage.models import Outbox

    book = _trained(db)
    clock = _clock(book)
    for _ in range(2):  # two scans, one switch
        with db.session() as s:
            assert service.scan(s, as_of=book.end, rules=RULES, clock=clock).decided_by[CHURN] == "model"
        clock.advance(days=1)
    assert _decisions(db) == [(CHURN, "model", "beats_rules")]

    settings = replace(Settings.from_env({}), rules=RULES)
    digests = []
    for _ in range(2):  # this week's digest tells it; next week's does not
        assert Jobs(db, settings, clock).digest_job()
        with db.session() as s:
            from sqlalchemy import select

            digests.append(
                s.scalars(select(Outbox).where(Outbox.action == "digest")).all()[-1].payload["report"]
            )
        clock.advance(days=7)
    first, second = (d["model"]["switches"] for d in digests)
    assert [(x["kind"], x["by"]) for x in first] == [(CHURN, "model")] and second == []

    from bot.i18n import translator
    from bot.views.digest import digest_blocks

    text = str(digest_blocks(translator("ja"), digests[0]))
    assert "解約リスクのアラートは、今週からモデル（バージョン1）で判定します。" in text
    assert "AUC 0.90、ルールは0.70" in text
    assert "Churn alerts now come from the model (version 1)" in str(
        digest_blocks(translator("en"), digests[0])
    )

    trust(db, {"model": {"auc_30d": 0.6, "top_decile_lift_30d": 1.0}, "rules": BEATS["rules"]})
    with db.session() as s:  # a retrained model that does worse: the rules take back over, recorded
        assert service.scan(s, as_of=book.end, rules=RULES, clock=clock).decided_by[CHURN] == "rules"
    assert _decisions(db)[-1] == (CHURN, "rules", "rules_better")
