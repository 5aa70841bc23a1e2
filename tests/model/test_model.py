"""The churn model on small books whose answer is known: what it ranks, what it may learn from, its
budget, its storage and its explanations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from model import store
from model.backtest import walk_forward
from model.cli import run_model
from model.features import History
from model.labels import CHURN_HORIZON, churn_dates
from model.service import explain, train_models
from model.train import (
    alerts_at,
    pipeline,
    rows_for,
    threshold_for_budget,
    train,
    week_cap,
    week_numbers,
    window_cap,
)
from settings import Rules
from storage import Database
from tests.model.book import NOW, build

RULES = Rules.load(None)


def _frames(db: Database, end: date) -> tuple[History, list]:
    with db.session() as s:
        h = History(s, end, 30)
        return h, [h.frame(k) for k in range(h.weeks)][::-1]


@pytest.mark.one_database
def test_a_quiet_low_usage_account_ranks_above_a_noisy_healthy_one(db: Database) -> None:
    book = build(db)
    with db.session() as s:
        done = train_models(s, book.end, RULES.health, now=NOW, backtest=False)
    assert [r.kind for r in done.rows] == ["churn"] and "upsell" in done.skipped  # no upgrades in this book
    with db.session() as s:
        quiet, noisy = (explain(s, e, book.end, RULES.health)[0] for e in ("QUIET", "NOISY"))
    assert quiet.probability > 3 * noisy.probability
    assert quiet.threshold is not None and quiet.probability >= quiet.threshold > noisy.probability
    # the reason is the level of use: the top driver is a usage level well under the typical one
    top = max(quiet.drivers, key=lambda d: d.contribution)
    assert top.feature.key.startswith(("active_users", "logins")) and top.value < top.typical


@pytest.mark.one_database
def test_training_never_sees_the_scored_week_or_outcomes_after_it(db: Database) -> None:
    book = build(db, probes=False)
    history, frames = _frames(db, book.end)
    with db.session() as s:
        churns = churn_dates(s)
    cutoff = book.end - timedelta(days=7 * 3)
    rows = rows_for(frames, churns, CHURN_HORIZON, cutoff)
    assert rows.day.max() < np.datetime64(cutoff, "D")
    assert rows.day.max() + np.timedelta64(CHURN_HORIZON, "D") <= np.datetime64(cutoff, "D")
    # the future cannot move the model: churns invented after the cutoff change nothing
    before = train("churn", frames, churns, CHURN_HORIZON, cutoff, budget=1.5, min_events=5)
    future = {a: [cutoff + timedelta(days=3)] for a in history.ids.tolist() if a not in churns}
    after = train("churn", frames, {**churns, **future}, CHURN_HORIZON, cutoff, budget=1.5, min_events=5)
    assert np.array_equal(before.coef, after.coef) and before.threshold == after.threshold
    # and the walk-forward trains each week only on weeks whose outcome was known then
    days = [book.end - timedelta(days=7 * k) for k in (6, 5, 4, 3, 2, 1, 0)]
    with db.session() as s:
        history = History(s, book.end, 30)
        replay = walk_forward(history, days, churns, {}, refit_weeks=1, min_events=5)
    assert replay.fits and all(
        date.fromisoformat(f["last_week"]) + timedelta(days=CHURN_HORIZON) <= f["cutoff"] for f in replay.fits
    )
    # and alerts as the scan does: within the share of the budget over any 4 weeks (at most the rate
    # rounded up in one), no account twice in 13 weeks
    per_week = {d: sum(1 for _, w, k in replay.alerts if w == d and k == "churn") for d in days}
    rates = {d: sum(1 for _, w, _ in replay.scores if w == d) * 1.5 / 100 for d in days}
    assert sum(per_week.values()) and all(per_week[d] <= week_cap(rates[d]) for d in days)
    windows = [(days[i - 3 : i + 1], rates[days[i]]) for i in range(3, len(days))]
    assert all(sum(per_week[d] for d in w) <= window_cap(rate) for w, rate in windows)
    churn_alerts = [(a, d) for a, d, k in replay.alerts if k == "churn"]
    assert len({a for a, _ in churn_alerts}) == len(churn_alerts)  # 7 weeks < 13: once each


@pytest.mark.one_database
def test_the_threshold_meets_the_budget_on_the_training_weeks(db: Database) -> None:
    book = build(db, probes=False)
    _, frames = _frames(db, book.end)
    with db.session() as s:
        churns = churn_dates(s)
    model = train("churn", frames, churns, CHURN_HORIZON, book.end, budget=3.0, min_events=5)
    rows = rows_for(frames, churns, CHURN_HORIZON, book.end)
    p, week = model.proba(rows.x), week_numbers(rows.day)
    allowed = 3.0 / 100 * len(p)
    assert alerts_at(p, week, rows.account, model.threshold) <= allowed
    lower = np.max(p[p < model.threshold])  # the next threshold down would break the budget
    assert alerts_at(p, week, rows.account, lower) > allowed


def test_alerts_at_a_threshold_rest_thirteen_weeks_per_account() -> None:
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    week = np.array([0, 1, 4, 12, 13, 20, 0])
    account = np.array([1, 1, 1, 1, 1, 1, 2])
    assert alerts_at(scores, week, account, 0.5) == 2  # weeks 0 and 13: the 90 days an alert speaks for
    assert threshold_for_budget(scores, week, account, 100 * 1 / 7) > 0.9  # one alert allowed: none fits


def test_the_stored_model_survives_a_restart(db: Database) -> None:
    book = build(db)
    with db.session() as s:
        train_models(s, book.end, RULES.health, now=NOW, backtest=False)
        model = store.latest(s, "churn")
        frame = History(s, book.end, 1).frame(0, metrics=model.metrics, plans=model.plans)
        p = model.proba(model.matrix(frame))
    db.dispose()
    again = Database(db.url)  # a new process: the database is all it has
    with again.session() as s:
        loaded = store.latest(s, "churn")
        frame = History(s, book.end, 1).frame(0, metrics=loaded.metrics, plans=loaded.plans)
        assert np.allclose(loaded.proba(loaded.matrix(frame)), p, rtol=0, atol=1e-12)
        assert loaded.threshold == model.threshold
    again.dispose()


@pytest.mark.one_database
def test_drivers_add_up_to_the_logit_of_the_pipeline(db: Database) -> None:
    book = build(db)
    _, frames = _frames(db, book.end)
    with db.session() as s:
        churns = churn_dates(s)
    model = train("churn", frames, churns, CHURN_HORIZON, book.end, budget=1.5, min_events=5)
    rows = rows_for(frames, churns, CHURN_HORIZON, book.end)
    sk = pipeline(model.features).fit(rows.x, rows.y)  # the scikit-learn pipeline it was read from
    x = frames[-1].x
    logit = model.contributions(x).sum(axis=1) + model.intercept
    assert np.allclose(logit, sk.decision_function(x), atol=1e-9)
    assert np.allclose(model.proba(x), sk.predict_proba(x)[:, 1], atol=1e-9)
    with db.session() as s:  # and what `model explain` prints for one account adds up the same way
        store.save(s, model, trained_at=NOW, data_through=book.end)
    with db.session() as s:
        e = explain(s, "QUIET", book.end, RULES.health)[0]
    logit = np.log(e.probability / (1 - e.probability))
    assert sum(d.contribution for d in e.drivers) + e.intercept == pytest.approx(logit, abs=1e-9)


def test_too_little_history_is_one_line_saying_how_much_is_needed(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    book = build(db, accounts=20, weeks=20, probes=False)
    code = run_model(db, RULES, "train", as_of=book.end, clock=lambda: NOW)
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("model train: the churn model needs 20 churn events") and "; has " in err
    assert run_model(db, RULES, "explain", as_of=book.end, clock=lambda: NOW, account="A001") == 1
    assert "no model trained yet" in capsys.readouterr().err


def test_a_driver_reads_as_value_against_typical_in_each_language() -> None:
    from model.features import feature_list
    from model.train import Driver

    per_seat = next(
        f for f in feature_list(["active_users"], [], "active_users") if f.key == "active_users.per_seat"
    )
    d = Driver(per_seat, 0.18, 0.55, 0.9)
    assert d.text("en", "Standard") == "active users per seat, last 28 days: 0.18 vs 0.55 typical on Standard"
    assert (
        d.text("ja", "Standard")
        == "1席あたりのアクティブユーザー数（1日平均、直近28日間）：0.18（Standardプランでは通常0.55）"
    )
    idle = next(f for f in feature_list([], [], "active_users") if f.key == "days_since_active")
    assert Driver(idle, 21.0, 1.0, 0.5).text("en") == "days since last activity: 21 days vs 1 typical"
    assert Driver(idle, 21.0, 1.0, 0.5).text("ja") == "最終利用からの日数：21日（通常1日）"


def test_a_past_week_does_not_see_a_handoff_made_after_it(db: Database) -> None:
    """Checklist gaps are today's answers, but only from the day of the handoff: a backtest must not
    learn from a handoff that had not happened yet."""
    from handoff import service
    from handoff.service import Actor
    from tests.clocks import FakeClock
    from tests.handoff.test_checklist import valid_form

    book = build(db, probes=False)
    made = datetime.combine(book.end - timedelta(days=10), datetime.min.time(), UTC)
    form = valid_form(account_name="Account A000", decision_maker=None, competitors=None)
    with db.session() as s:
        h = service.create(s, form=form, actor=Actor("U1"), clock=FakeClock(made), rules=RULES)
        account_id = h.account_id
    with db.session() as s:
        history = History(s, book.end, 4)
        now, before = history.frame(0), history.frame(2)  # today; two weeks before the handoff
    gaps_now = now.column("handoff_gaps")[list(now.account_ids).index(account_id)]
    gaps_before = before.column("handoff_gaps")[list(before.account_ids).index(account_id)]
    assert gaps_now >= 2 and gaps_before == 0
