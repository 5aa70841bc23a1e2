"""The benchmark's definitions on cases small enough to work out by hand."""

from datetime import date, timedelta

import pytest

from model.metrics import auc, caught_ahead, followed_share, ratio, top_share_lift

D = date(2026, 6, 1)


def test_auc_perfect_reversed_and_ties_count_half() -> None:
    assert auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auc([5, 5, 5, 5], [True, False, True, False]) == 0.5  # one score for all: chance
    # pairs (pos, neg): (2, 1) win, (2, 2) tie, (1, 1) tie, (1, 2) loss -> (1 + 0.5 + 0.5) / 4
    assert auc([2, 1, 2, 1], [True, True, False, False]) == pytest.approx(0.5)
    assert auc([2, 2, 1], [True, False, False]) == pytest.approx(0.75)


def test_auc_needs_both_classes() -> None:
    assert auc([1, 2], [False, False]) is None


def test_top_share_lift_plain_and_with_ties_at_the_cut() -> None:
    scores = list(range(10, 0, -1))  # 10 rows, highest first
    labels = [True] + [False] * 8 + [True]
    assert top_share_lift(scores, labels, 0.1) == pytest.approx(1.0 / 0.2)  # top row churns: 100 % vs 20 %
    # all ten tied: the top decile is a random tenth of them, so lift 1 whatever sorting does
    assert top_share_lift([1] * 10, labels, 0.1) == pytest.approx(1.0)
    # top 2 of 10 wanted; 1 row above the cut (a churn), 2 tied at it with one churn: (1 + 0.5) / 2
    assert top_share_lift([9, 5, 5, 1, 1, 1, 1, 1, 1, 1], [True, True] + [False] * 8, 0.2) == pytest.approx(
        0.75 / 0.2
    )


def test_recall_window_edges_7_and_90_days() -> None:
    churn = [("a", D)]
    for gap, caught in ((6, False), (7, True), (90, True), (91, False)):
        got = caught_ahead(churn, {"a": [D - timedelta(days=gap)]})
        assert (got.caught, got.total) == (int(caught), 1), gap
    assert caught_ahead(churn, {"b": [D - timedelta(days=30)]}).caught == 0  # another account's alert


def test_recall_lead_is_the_earliest_alert_in_the_window() -> None:
    alerts = {"a": [D - timedelta(days=120), D - timedelta(days=60), D - timedelta(days=14)]}
    got = caught_ahead([("a", D), ("b", D)], alerts)
    assert got.recall == 0.5 and got.leads == [60] and got.median_lead == 60


def test_precision_base_rate_and_lift() -> None:
    churns = {"a": [D], "b": [D + timedelta(days=200)]}
    alerts = [("a", D - timedelta(days=90)), ("a", D - timedelta(days=91)), ("b", D), ("c", D)]
    assert followed_share(alerts, churns, 1, 90) == (1, 4)
    weeks = [(acc, D - timedelta(days=7 * k)) for acc in "abcd" for k in range(5)]
    hit, n = followed_share(weeks, churns, 1, 90)
    assert (hit, n) == (4, 20)  # a's weeks 7-28 days before its churn; the week of the churn day is not ahead
    assert ratio(1 / 4, hit / n) == pytest.approx(1.25)
    assert ratio(0.5, 0) is None


def test_ranking_counts_an_event_one_to_horizon_days_after_the_week() -> None:
    from model.metrics import ranking

    events = {"a": [D + timedelta(days=90)], "b": [D], "c": [D + timedelta(days=91)]}
    rows = [("a", D, 0.9), ("b", D, 0.8), ("c", D, 0.7), ("d", D, 0.1)]
    # only a's upgrade is within 1-90 days (b's is the same day, c's a day too late): a ranks first
    assert ranking(rows, events, 90, "upsell") == {
        "upsell_auc_90d": 1.0,
        "upsell_top_decile_lift_90d": pytest.approx(4.0),
    }
    assert ranking([], events, 90, "upsell") == {"upsell_auc_90d": None, "upsell_top_decile_lift_90d": None}
