"""The backtest's switch figures: each counted on the weeks whose outcome at its own horizon is known,
so a model past the cold start is judged weeks before its first 90-day figure, and never on a week
whose outcome the data does not show yet."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from alerts import budget
from alerts.rules import CHURN, UPSELL
from model import backtest, store
from model.backtest import SWITCH, known_through, run
from model.cli import print_backtest
from model.labels import CHURN_HORIZON
from model.service import train_models
from model.train import NotEnoughHistory
from settings import Rules
from storage import Database
from tests.model.book import NOW, build

_LOADED = Rules.load(None)
RULES = replace(_LOADED, alerts=replace(_LOADED.alerts, model_min_events=1, model_min_weeks=1))


def test_a_history_without_a_90_day_outcome_yet_is_judged_on_its_30_day_weeks(db: Database) -> None:
    book = build(db, weeks=30)  # long enough to train and score, too short to see a week's 90 days
    with db.session() as s:
        with pytest.raises(NotEnoughHistory, match="known 90-day outcome"):
            run(s, book.end, RULES.health)  # `model backtest` has no report to print yet
        bt = run(s, book.end, RULES.health, require_outcome=False)
    assert bt.model == {} and bt.rules == {} and set(bt.switch) == {"churn"}
    churn = bt.switch["churn"]
    last = date.fromisoformat(churn["last"])
    assert last == known_through(bt.anchor, 30) and last + timedelta(days=30) <= bt.anchor
    assert last > known_through(bt.anchor, CHURN_HORIZON)
    keys = set(SWITCH["churn"][0])
    assert set(churn["model"]) == set(churn["rules"]) == keys
    assert all(0 <= churn[m]["auc_30d"] <= 1 for m in ("model", "rules"))
    js = bt.as_json()
    assert js["refits"] >= 1 and js["algorithm"] == {
        "algorithm": "logistic_regression",
        "why": "not_compared",
    }

    with db.session() as s:  # the scan's training stores it, and the switch decides on it
        train_models(s, book.end, RULES.health, now=NOW)
    with db.session() as s:
        row = store.latest_row(s, "churn")
        assert row is not None and row.backtest["switch"] == bt.as_json()["switch"]
        decided = budget.decide(row, CHURN, RULES)
        assert decided.why in ("beats_rules", "rules_better")
        assert set(decided.params["figures"]) == keys
        assert budget.decide(store.latest_row(s, "upsell"), UPSELL, RULES).why in ("no_backtest", "no_model")


@pytest.mark.one_database
def test_the_switch_weeks_run_past_the_report_to_the_last_known_30_day_outcome(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    book = build(db, weeks=40)
    with db.session() as s:
        bt = run(s, book.end, RULES.health)
    churn, upsell = bt.switch["churn"], bt.switch["upsell"]
    assert churn["first"] == bt.first.isoformat() and upsell["first"] == bt.first.isoformat()
    assert bt.last <= known_through(bt.anchor, CHURN_HORIZON) and upsell["last"] == bt.last.isoformat()
    assert date.fromisoformat(churn["last"]) == known_through(bt.anchor, 30)
    # the report is the 90-day weeks' alone: nothing the replay scored after them reaches it
    assert max(d for _, d, _ in bt.replay.scores) == bt.last
    assert churn["model"]["auc_30d"] != bt.model["auc_30d"]  # more weeks, another figure
    print_backtest(bt)  # `model backtest` says what the switch compared
    said = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("the scan's switch"))
    assert f"on {churn['first']} to {churn['last']} " in said
    assert f"AUC {churn['model']['auc_30d']:.3f} vs {churn['rules']['auc_30d']:.3f}," in said


def test_the_switch_reads_each_kinds_own_weeks_and_older_rows_their_report(db: Database) -> None:
    book = build(db)
    with db.session() as s:
        train_models(s, book.end, RULES.health, now=NOW, backtest=False)
    worse = {
        "model": {"auc_30d": 0.6, "top_decile_lift_30d": 1.5},
        "rules": {"auc_30d": 0.7, "top_decile_lift_30d": 2.0},
    }
    better = {
        "model": {"auc_30d": 0.9, "top_decile_lift_30d": 5.0},
        "rules": {"auc_30d": 0.7, "top_decile_lift_30d": 2.0},
    }
    with db.session() as s:
        row = store.latest_row(s, "churn")
        assert row is not None
        row.backtest = {**worse, "switch": {"churn": better}}  # the 30-day weeks decide
        assert budget.decide(row, CHURN, RULES).why == "beats_rules"
        row.backtest = {**better, "switch": {"churn": worse}}
        assert budget.decide(row, CHURN, RULES).why == "rules_better"
        row.backtest = dict(better)  # stored before the switch had its own weeks: the report's figures
        assert budget.decide(row, CHURN, RULES).why == "beats_rules"
        row.backtest = {"switch": {"churn": better}}  # no upsell part yet: upsell is not judged
        assert budget.decide(row, UPSELL, RULES).why == "no_backtest"


@pytest.mark.one_database
def test_with_boosting_chosen_the_churn_switch_reads_the_boosted_scores(db: Database, monkeypatch) -> None:
    book = build(db, weeks=40)
    real = backtest.choose

    def boosting_wins(regression, boosted, keys=backtest.CHOICE_FIGURES, **kw):
        if keys != backtest.CHOICE_FIGURES or not boosted:
            return real(regression, boosted, keys, **kw)
        return {"algorithm": backtest.BOOSTING, "why": "beats_regression"}

    monkeypatch.setattr(backtest, "choose", boosting_wins)
    with db.session() as s:
        bt = run(s, book.end, RULES.health, gradient_boosting=True)
    assert bt.algorithm == backtest.BOOSTING
    days = {d for _, d, _ in bt.replay.gb_scores}
    assert max(days) == bt.last  # the report: boosted scores up to its last 90-day week
    with db.session() as s:
        regression = run(s, book.end, RULES.health)  # the regression's own switch, same weeks
    assert bt.switch["churn"]["first"] == regression.switch["churn"]["first"]
    assert bt.switch["churn"]["model"] != regression.switch["churn"]["model"]  # the boosted model's
    assert bt.switch["churn"]["rules"] == regression.switch["churn"]["rules"]
