"""Gradient boosting as stored numbers: it scores as scikit-learn does, its drivers add up to its logit,
it survives a restart, it is chosen only when its backtest beats the regression on the same weeks,
and it never learns from the week it scores."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from alerts import budget
from model import backtest, boosted, store
from model.backtest import BOOSTING, REGRESSION, choose, walk_forward
from model.boosted import BoostedModel, read_trees
from model.features import History
from model.labels import CHURN_HORIZON, churn_dates
from model.service import explain, train_models
from model.train import Rows, drivers, rows_for, train
from settings import ConfigError, Rules
from storage import Database
from tests.model.book import NOW, build

RULES = Rules.load(None)


def _rows(db: Database, end: date, cutoff: date | None = None) -> tuple[list, dict, Rows]:
    with db.session() as s:
        h = History(s, end, 30)
        frames = [h.frame(k) for k in range(h.weeks)][::-1]
        churns = churn_dates(s)
    return frames, churns, rows_for(frames, churns, CHURN_HORIZON, cutoff or end)


def _with_unknowns(x: np.ndarray, share: float = 0.2) -> np.ndarray:
    """The rows with a share of values unknown, as a new account's or a missing metric's are."""
    out = np.array(x, dtype=float, copy=True)
    out[np.random.default_rng(0).random(out.shape) < share] = np.nan
    return out


@pytest.fixture
def fitted(db: Database) -> tuple[BoostedModel, object, Rows]:
    """A boosted churn model on the small book, trained with unknown values, and scikit-learn's own."""
    book = build(db)
    frames, _, rows = _rows(db, book.end)
    rows = replace(rows, x=_with_unknowns(rows.x))
    f0 = frames[0]
    model = boosted.fit("churn", rows, f0.features, ["active_users", "logins"], [])
    clf = boosted.classifier(rows.x, rows.y)
    return model, clf, rows


@pytest.mark.one_database
def test_it_scores_as_scikit_learn_does_with_unknown_values_too(fitted) -> None:
    model, clf, rows = fitted
    assert np.isnan(rows.x).any()
    assert np.allclose(model.proba(rows.x), clf.predict_proba(rows.x)[:, 1], rtol=0, atol=1e-9)
    assert np.allclose(model.decision(rows.x), clf.decision_function(rows.x), rtol=0, atol=1e-9)
    # the trees read straight off the classifier are the model's: fitting is deterministic
    trees = read_trees(clf)
    assert np.array_equal(trees.value, model.trees.value) and trees.depth == model.trees.depth
    # and rows it never saw, all unknown included
    unseen = _with_unknowns(rows.x[:50] * 1.7, 0.5)
    unseen[0] = np.nan
    assert np.allclose(model.proba(unseen), clf.predict_proba(unseen)[:, 1], rtol=0, atol=1e-9)


@pytest.mark.one_database
def test_contributions_add_up_to_the_logit(fitted) -> None:
    model, _, rows = fitted
    c = model.contributions(rows.x)
    assert c.shape == rows.x.shape
    assert np.allclose(c.sum(axis=1) + model.intercept, model.decision(rows.x), rtol=0, atol=1e-9)
    # only features the trees split on are credited, and the drivers read as the regression's do
    used = set(model.trees.feature[~model.trees.leaf].tolist())
    assert set(np.nonzero(np.abs(c).sum(axis=0))[0].tolist()) <= used
    top = drivers(model, rows.x[0], None, top=None)
    assert sum(d.contribution for d in top) + model.intercept == pytest.approx(model.decision(rows.x[:1])[0])


def test_a_categorical_split_is_refused() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(1)
    x = np.column_stack([rng.integers(0, 4, 400), rng.normal(size=400)])
    y = (x[:, 0] == 2) ^ (rng.random(400) < 0.1)
    clf = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0], random_state=0).fit(x, y)
    with pytest.raises(ValueError, match="categorical"):
        read_trees(clf)


def test_the_stored_boosted_model_scores_the_same_after_a_restart(db: Database) -> None:
    book = build(db)
    frames, churns, _ = _rows(db, book.end)
    model = train("churn", frames, churns, CHURN_HORIZON, book.end, budget=1.5, algorithm=BOOSTING)
    assert isinstance(model, BoostedModel) and model.threshold is not None
    with db.session() as s:
        row = store.save(s, model, trained_at=NOW, data_through=book.end)
        assert row.algorithm == "gradient_boosting"
        frame = History(s, book.end, 1).frame(0, metrics=model.metrics, plans=model.plans)
        x = model.matrix(frame)
        p = model.proba(x)
    db.dispose()
    again = Database(db.url)  # a new process: the database is all it has
    with again.session() as s:
        loaded = store.latest(s, "churn")
        assert isinstance(loaded, BoostedModel)
        frame = History(s, book.end, 1).frame(0, metrics=loaded.metrics, plans=loaded.plans)
        assert np.array_equal(loaded.proba(loaded.matrix(frame)), p)
        assert np.array_equal(loaded.contributions(x), model.contributions(x))
        assert loaded.intercept == model.intercept and loaded.threshold == model.threshold
        assert loaded.floor == model.floor
        # the scan scores with it: its probabilities, and reasons whose drivers the trees gave
        scored = budget.score_accounts(s, book.end, RULES)[budget.CHURN]
        ids = frame.account_ids.tolist()
        assert [scored[a].probability for a in ids] == pytest.approx(p.tolist(), abs=1e-12)
        quiet = scored[ids[int(np.argmax(p))]].reason["params"]
        assert quiet["drivers"] and all(d["contribution"] > 0 for d in quiet["drivers"])
    again.dispose()


@pytest.mark.one_database
def test_explain_adds_up_for_a_boosted_model(db: Database) -> None:
    book = build(db)
    frames, churns, _ = _rows(db, book.end)
    model = train("churn", frames, churns, CHURN_HORIZON, book.end, budget=1.5, algorithm=BOOSTING)
    with db.session() as s:
        store.save(s, model, trained_at=NOW, data_through=book.end)
    with db.session() as s:
        e = explain(s, "QUIET", book.end, RULES.health)[0]
    assert len(e.drivers) == len(model.features)
    logit = np.log(e.probability / (1 - e.probability))
    assert sum(d.contribution for d in e.drivers) + e.intercept == pytest.approx(logit, abs=1e-9)
    assert e.as_json()["logit"] == pytest.approx(logit, abs=1e-3)


# --- the choice -------------------------------------------------------------------------------------


def _figs(auc: float | None, lift: float | None) -> dict:
    return {"auc_30d": auc, "top_decile_lift_30d": lift, "churn_recall_7_90d": 0.5}


def test_boosting_is_chosen_only_when_it_beats_the_regression_on_both_figures() -> None:
    lr = _figs(0.87, 4.0)
    assert choose(lr, _figs(0.88, 4.5))["algorithm"] == BOOSTING
    assert choose(lr, _figs(0.88, 4.5))["why"] == "beats_regression"
    assert choose(lr, _figs(0.84, 5.0))["algorithm"] == REGRESSION  # better lift, worse ranking
    assert choose(lr, _figs(0.90, 4.0))["why"] == "regression_better"  # a tie is not a win
    assert choose(lr, _figs(None, 9.0)) == {
        "algorithm": REGRESSION,
        "why": "no_figures",
        "figures": {
            "auc_30d": {REGRESSION: 0.87, BOOSTING: None},
            "top_decile_lift_30d": {REGRESSION: 4.0, BOOSTING: 9.0},
        },
    }
    assert choose(lr, None) == {"algorithm": REGRESSION, "why": "not_compared"}
    # boosting was a candidate but the replay fitted none: not the settings' doing
    assert choose(lr, None, tried=True) == {"algorithm": REGRESSION, "why": "not_replayed"}


@pytest.mark.one_database
def test_training_stores_the_regression_when_boosting_loses_its_backtest(db: Database) -> None:
    book = build(db)
    with db.session() as s:
        done = train_models(s, book.end, RULES.health, now=NOW, algorithms=RULES.alerts.model_algorithms)
        row = done.rows[0]
        assert row.kind == "churn" and row.algorithm == REGRESSION
        bt = row.backtest
        assert bt["algorithm"]["why"] == "regression_better"  # on this book the regression ranks better
        figs = bt["algorithm"]["figures"]["auc_30d"]
        assert figs[REGRESSION] == bt["model"]["auc_30d"] == bt["logistic_regression"]["auc_30d"]
        assert figs[BOOSTING] == bt["gradient_boosting"]["auc_30d"] < figs[REGRESSION]
        assert set(bt["algorithm"]["calibration_ece"]) == {REGRESSION, BOOSTING}


def test_training_stores_the_boosted_model_when_it_wins_its_backtest(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    book = build(db)

    def boosting_wins(
        regression: dict, boosted_figs: dict | None, keys=backtest.CHOICE_FIGURES, **_: object
    ) -> dict:
        if keys != backtest.CHOICE_FIGURES:  # upsell: this book has no upgrades, nothing to compare
            return {"algorithm": REGRESSION, "why": "not_compared"}
        assert regression and boosted_figs  # both replayed on the same weeks
        return {"algorithm": BOOSTING, "why": "beats_regression", "figures": {}}

    monkeypatch.setattr(backtest, "choose", boosting_wins)
    with db.session() as s:
        done = train_models(s, book.end, RULES.health, now=NOW, algorithms=RULES.alerts.model_algorithms)
        row = done.rows[0]
        assert row.algorithm == BOOSTING and row.threshold is not None
        # the figures the scan and the digest compare with the rules are the boosted model's own
        assert row.backtest["model"] == row.backtest["gradient_boosting"]
        assert row.backtest["model"]["account_weeks"] == row.backtest["logistic_regression"]["account_weeks"]
        from model.decisions import digest_part

        assert digest_part(s)["backtest"]["algorithm"] == BOOSTING
    with db.session() as s:
        e = explain(s, "QUIET", book.end, RULES.health)[0]
        assert e.probability > explain(s, "NOISY", book.end, RULES.health)[0].probability
    from model.cli import run_model

    assert run_model(db, RULES, "train", as_of=book.end, clock=lambda: NOW) == 0
    said = capsys.readouterr().out
    assert "churn model v2 (gradient boosting, its backtest beat the regression) trained on" in said
    # with the regression alone listed, boosting is not even replayed
    monkeypatch.undo()
    with db.session() as s:
        done = train_models(s, book.end, RULES.health, now=NOW, algorithms=(REGRESSION,))
        assert done.rows[0].algorithm == REGRESSION
        assert done.rows[0].backtest["algorithm"]["why"] == "not_compared"


@pytest.mark.one_database
def test_boosting_never_sees_the_scored_week_or_outcomes_after_it(db: Database) -> None:
    book = build(db, probes=False)
    cutoff = book.end - timedelta(days=7 * 3)
    frames, churns, _ = _rows(db, book.end)
    with db.session() as s:
        ids = History(s, book.end, 30).ids.tolist()
    before = train(
        "churn", frames, churns, CHURN_HORIZON, cutoff, budget=1.5, min_events=5, algorithm=BOOSTING
    )
    future = {a: [cutoff + timedelta(days=3)] for a in ids if a not in churns}
    after = train(
        "churn",
        frames,
        {**churns, **future},
        CHURN_HORIZON,
        cutoff,
        budget=1.5,
        min_events=5,
        algorithm=BOOSTING,
    )
    assert np.array_equal(before.trees.value, after.trees.value) and before.threshold == after.threshold
    assert date.fromisoformat(before.training["last_week"]) + timedelta(days=CHURN_HORIZON) <= cutoff
    # the walk-forward fits it at the regression's refits, on weeks whose outcome was known then,
    # and scores it on the same account-weeks
    days = [book.end - timedelta(days=7 * k) for k in (6, 5, 4, 3, 2, 1, 0)]
    with db.session() as s:
        history = History(s, book.end, 30)
        replay = walk_forward(history, days, churns, {}, refit_weeks=1, min_events=5, gradient_boosting=True)
    assert replay.gb_fits == [f for f in replay.fits if f["kind"] == "churn"]
    assert all(
        date.fromisoformat(f["last_week"]) + timedelta(days=CHURN_HORIZON) <= f["cutoff"]
        for f in replay.gb_fits
    )
    assert [(a, d) for a, d, _ in replay.gb_scores] == [(a, d) for a, d, _ in replay.scores]
    assert replay.gb_alerts and len({a for a, _, _ in replay.gb_alerts}) == len(replay.gb_alerts)


def test_the_candidates_setting_needs_the_regression(tmp_path) -> None:
    assert RULES.alerts.model_algorithms == (REGRESSION, BOOSTING)
    path = tmp_path / "baton.yml"
    path.write_text("alerts:\n  model_algorithms: [logistic_regression]\n", encoding="utf-8")
    assert Rules.load(path).alerts.model_algorithms == (REGRESSION,)
    for bad in ("[gradient_boosting]", "[logistic_regression, xgboost]", "gradient_boosting"):
        path.write_text(f"alerts:\n  model_algorithms: {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="model_algorithms"):
            Rules.load(path)


@pytest.mark.one_database
def test_model_backtest_says_which_algorithm_it_chose_and_why(
    db: Database, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.cli import run_model

    book = build(db)
    png = str(tmp_path / "bt.png")
    assert run_model(db, RULES, "backtest", as_of=book.end, clock=lambda: NOW, png=png) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("gradient boosting on the same weeks"))
    assert re.search(r"AUC 0\.\d{3} vs 0\.\d{3}, top-decile lift \d+\.\d\d vs \d+\.\d\d", line)
    assert line.endswith("the regression stays (gradient boosting must beat it on both)")
    only = replace(RULES, alerts=replace(RULES.alerts, model_algorithms=(REGRESSION,)))
    assert run_model(db, only, "backtest", as_of=book.end, clock=lambda: NOW, png=png) == 0
    assert "gradient boosting" not in capsys.readouterr().out


@pytest.mark.one_database
def test_the_boosted_threshold_meets_the_budget_on_the_training_weeks(db: Database) -> None:
    from model.train import alerts_at, week_numbers

    book = build(db, probes=False)
    frames, churns, rows = _rows(db, book.end)
    model = train(
        "churn", frames, churns, CHURN_HORIZON, book.end, budget=3.0, min_events=5, algorithm=BOOSTING
    )
    p, week = model.proba(rows.x), week_numbers(rows.day)
    allowed = 3.0 / 100 * len(p)
    assert alerts_at(p, week, rows.account, model.threshold) <= allowed
    assert alerts_at(p, week, rows.account, np.max(p[p < model.threshold])) > allowed
    assert model.floor == pytest.approx(2 * rows.y.mean())  # twice the base rate, as the regression's
