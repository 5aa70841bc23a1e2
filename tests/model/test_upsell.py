"""Upsell's algorithm is chosen as churn's: both algorithms replayed on the same weeks and rows, the
boosted model stored only when its backtest ranks upgrades better on AUC and top-decile lift, the
choice and why recorded; ``alerts.model_algorithms: [logistic_regression]`` keeps it a regression.
The book's upgrades follow a band of use a regression cannot draw, so boosting must win there; the
figures themselves differ across backends and are not pinned."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest

from model import backtest, store
from model.backtest import BOOSTING, REGRESSION, UPSELL_CHOICE_FIGURES, choose, walk_forward
from model.boosted import BoostedModel
from model.cli import print_backtest, run_model, train_lines
from model.features import History
from model.labels import UPSELL_HORIZON, churn_dates, upgrade_dates
from model.service import explain, train_models
from settings import Rules
from storage import Database
from tests.model.book import NOW, build

RULES = Rules.load(None)
AUC, LIFT = UPSELL_CHOICE_FIGURES


def _book(db: Database):
    return build(db, weeks=52, upgrades=True)


def _rows(done) -> dict:
    return {r.kind: r for r in done.rows}


def test_upsell_is_boosted_when_its_backtest_ranks_upgrades_better_on_both(db: Database) -> None:
    book = _book(db)
    with db.session() as s:
        done = train_models(s, book.end, RULES.health, now=NOW, algorithms=RULES.alerts.model_algorithms)
        rows = _rows(done)
        assert set(rows) == {"churn", "upsell"}
        up, bt = rows["upsell"], rows["upsell"].backtest
        choice = bt["upsell_algorithm"]
        assert choice["algorithm"] == BOOSTING and choice["why"] == "beats_regression"
        assert up.algorithm == BOOSTING and isinstance(store.load(up), BoostedModel)
        for key in (AUC, LIFT):
            figs = choice["figures"][key]
            assert figs[BOOSTING] > figs[REGRESSION]
            assert figs[BOOSTING] == bt["gradient_boosting"][key] == bt["model"][key]
            assert figs[REGRESSION] == bt["logistic_regression"][key]
        assert 0.5 < choice["figures"][AUC][REGRESSION] < choice["figures"][AUC][BOOSTING] <= 1
        assert set(choice["calibration_ece"]) == {REGRESSION, BOOSTING}
        # the rules' health score ranks upgrades on the same weeks, for the same comparison
        assert {AUC, LIFT} <= set(bt["rules"])
        # churn's choice is its own, recorded as before, and the row stored is the one it names
        assert rows["churn"].algorithm == bt["algorithm"]["algorithm"]
        assert set(bt["algorithm"]["figures"]) == set(backtest.CHOICE_FIGURES)
        assert rows["churn"].backtest == bt  # one backtest, stored with both models
    with db.session() as s:
        kinds = [e.kind for e in explain(s, "A001", book.end, RULES.health)]
        assert kinds == ["churn", "upsell"]


@pytest.mark.one_database
def test_the_cli_names_the_upsell_algorithm_and_why(db: Database, capsys) -> None:
    book = _book(db)
    assert run_model(db, RULES, "train", as_of=book.end, clock=lambda: NOW, as_json=True) == 0
    said = json.loads(capsys.readouterr().out)
    models = {m["kind"]: m for m in said["models"]}
    assert (
        models["upsell"]["algorithm"] == BOOSTING and models["upsell"]["algorithm_why"] == "beats_regression"
    )
    assert models["churn"]["algorithm_why"] in ("beats_regression", "regression_better")
    # the lines `model train` prints are made from the same records (one training, not two)
    assert any(
        x.startswith("upsell model v1 (gradient boosting, its backtest beat the regression) trained on")
        for x in train_lines(said["models"], said["skipped"])
    )
    with db.session() as s:  # what `model backtest` prints, as text and as --json (model/cli.py)
        bt = backtest.run(s, book.end, RULES.health, gradient_boosting=True)
    js = json.loads(json.dumps(bt.as_json(), default=str))
    assert js["upsell_algorithm"]["algorithm"] == BOOSTING and {"algorithm", "model", "rules"} <= set(js)
    print_backtest(bt)
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("gradient boosting for upsell on the same weeks"))
    assert line.endswith("it beats the regression on both, so it is the upsell model")
    assert any(x.startswith("AUC, upgrade within 90 days") for x in out.splitlines())


@pytest.mark.one_database
def test_with_the_regression_alone_upsell_stays_a_regression(db: Database) -> None:
    book = _book(db)
    only = replace(RULES.alerts, model_algorithms=(REGRESSION,))
    with db.session() as s:
        rows = _rows(train_models(s, book.end, RULES.health, now=NOW, algorithms=only.model_algorithms))
        bt = rows["upsell"].backtest
        assert rows["upsell"].algorithm == REGRESSION and rows["churn"].algorithm == REGRESSION
        assert bt["upsell_algorithm"] == {"algorithm": REGRESSION, "why": "not_compared"}
        assert bt["gradient_boosting"] is None
        # the threshold-free figures are measured all the same
        assert 0.5 < bt["model"][AUC] <= 1 and bt["model"][LIFT] > 1


@pytest.mark.one_database
def test_each_kind_is_chosen_apart_and_the_model_figures_follow_each_choice(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _book(db)
    real = backtest.choose

    def churn_boosted_upsell_not(regression, boosted, keys=backtest.CHOICE_FIGURES, **_):
        if keys == backtest.CHOICE_FIGURES:
            return {"algorithm": BOOSTING, "why": "beats_regression", "figures": {}}
        out = real(regression, boosted, keys)
        return {**out, "algorithm": REGRESSION, "why": "regression_better"}

    monkeypatch.setattr(backtest, "choose", churn_boosted_upsell_not)
    with db.session() as s:
        rows = _rows(
            train_models(s, book.end, RULES.health, now=NOW, algorithms=RULES.alerts.model_algorithms)
        )
        assert rows["churn"].algorithm == BOOSTING and rows["upsell"].algorithm == REGRESSION
        bt = rows["churn"].backtest
        gb, lr, model = bt["gradient_boosting"], bt["logistic_regression"], bt["model"]
        # churn's figures are boosting's, upsell's the regression's (ranking and alerts alike)
        for key in ("auc_30d", "top_decile_lift_30d", "churn_recall_7_90d", "churn_alerts_per_100_week"):
            assert model[key] == gb[key]
        for key in (AUC, LIFT, "upsell_recall_90d", "upsell_alerts_per_100_week", "upsell_lift_90d"):
            assert model[key] == lr[key]
        assert model["account_weeks"] == lr["account_weeks"] == gb["account_weeks"]


def test_choose_compares_upsell_on_its_own_figures() -> None:
    lr = {"auc_30d": 0.9, "top_decile_lift_30d": 5.0, AUC: 0.80, LIFT: 3.0}
    better_churn = {"auc_30d": 0.95, "top_decile_lift_30d": 6.0, AUC: 0.70, LIFT: 4.0}
    assert choose(lr, better_churn)["algorithm"] == BOOSTING
    up = choose(lr, better_churn, UPSELL_CHOICE_FIGURES)
    assert up["algorithm"] == REGRESSION and up["why"] == "regression_better"  # better lift, worse AUC
    assert set(up["figures"]) == {AUC, LIFT}
    assert choose(lr, {**better_churn, AUC: 0.81}, UPSELL_CHOICE_FIGURES)["why"] == "beats_regression"
    assert choose(lr, {**better_churn, AUC: None}, UPSELL_CHOICE_FIGURES)["why"] == "no_figures"


@pytest.mark.one_database
def test_the_boosted_upsell_model_is_fitted_at_the_regressions_refits_on_known_outcomes(db: Database) -> None:
    book = _book(db)
    days = [book.end - timedelta(days=7 * k) for k in range(20, 12, -1)]
    with db.session() as s:  # History reads as the replay asks: inside the unit of work
        history = History(s, book.end, 52)
        churns, ups = churn_dates(s), upgrade_dates(s)
        replay = walk_forward(history, days, churns, ups, refit_weeks=2, gradient_boosting=True)
    fits = [f for f in replay.fits if f["kind"] == "upsell"]
    assert fits and [f for f in replay.gb_fits if f["kind"] == "upsell"] == fits
    assert all(
        date.fromisoformat(f["last_week"]) + timedelta(days=UPSELL_HORIZON) <= f["cutoff"] for f in fits
    )
    assert replay.upsell_scores and [(a, d) for a, d, _ in replay.gb_upsell_scores] == [
        (a, d) for a, d, _ in replay.upsell_scores
    ]
    assert any(k == "upsell" for _, _, k in replay.gb_alerts)
