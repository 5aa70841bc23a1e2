"""The scan with a trained model: alerts for the accounts the model ranks highest, capped each week at
the budget, hard rules counted in it; the cards' reasons carry the probability and the drivers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts import budget, service
from alerts.rules import CHURN, UPSELL, Finding
from model.service import train_models
from settings import ConfigError, Rules
from storage import Database
from tests.clocks import FakeClock
from tests.model.book import NOW, build

RULES = Rules.load(None)


def _rules(per_100: float, churn: float = 75) -> Rules:
    alerts = replace(
        RULES.alerts,
        budget_per_100_accounts_week=per_100,
        budget_shares={"churn": churn, "upsell": 100 - churn},
    )
    return replace(RULES, alerts=alerts)


def _trained(db: Database):
    book = build(db)
    with db.session() as s:
        train_models(s, book.end, RULES.health, now=NOW, backtest=False)
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


def test_the_week_is_capped_at_the_budget_open_alerts_counted(db: Database) -> None:
    book = _trained(db)
    rules = _rules(4)
    with db.session() as s:
        clock = _clock(book)
        first = service.scan(s, as_of=book.end, rules=rules, clock=clock)
        accounts = first.accounts
        cap = budget.cap(accounts, rules, CHURN)
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
    rules = _rules(4, churn=50)  # 100 accounts: 2 churn alerts a week
    idle = Finding(1, CHURN, "high", 30, [{"code": "inactive", "params": {"days": 20}}])
    soft = Finding(2, CHURN, "medium", 60, [{"code": "usage_drop", "params": {}}])
    scored = {3: _scored(0.9), 4: _scored(0.8), 5: _scored(0.1)}
    got, cut = budget.select_findings(
        [idle, soft], scored, CHURN, accounts=100, used=0, blocked=set(), open_ids=set(), rules=rules
    )
    assert [f.account_id for f in got] == [1, 3] and cut == 1  # a soft rule alone raises nothing
    got, _ = budget.select_findings(
        [idle], scored, CHURN, accounts=100, used=2, blocked=set(), open_ids=set(), rules=rules
    )
    assert [f.account_id for f in got] == [1]  # over the budget, the hard rule still raises


def test_an_open_alert_keeps_its_place_without_a_new_slot() -> None:
    scored = {3: _scored(0.9), 4: _scored(0.8)}
    got, cut = budget.select_findings(
        [], scored, CHURN, accounts=100, used=2, blocked=set(), open_ids={3}, rules=_rules(4, churn=50)
    )
    assert [f.account_id for f in got] == [3] and cut == 1


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
