"""The digest chart in both languages: Japanese labels need a CJK font, and never render as boxes."""

from __future__ import annotations

import math
import os
import warnings

import pytest

from bot.i18n import translator
from bot.views.digest import chart_labels
from digest import chart

WEEKS = [
    {
        "week": f"2026-{9 + i // 4:02}-{1 + 7 * (i % 4):02}",
        "green": 5 + i,
        "yellow": 2,
        "red": i % 3,
        "nrr": 100 - i * 0.5,
    }
    for i in range(12)
]


def test_japanese_labels_are_drawn_with_a_font_that_has_their_glyphs() -> None:
    if chart.cjk_font() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no CJK font: scripts/test installs fonts-ipafont-gothic")
        pytest.skip("no CJK font installed (scripts/test installs fonts-ipafont-gothic)")
    labels = chart_labels(translator("ja"))
    assert labels.needs_cjk() and labels.title.startswith("ヘルス別")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = chart.render(WEEKS, labels)
    assert png.startswith(b"\x89PNG")
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]
    assert png != chart.render(WEEKS, chart_labels(translator("en")))


def test_without_a_cjk_font_japanese_falls_back_to_english(monkeypatch, caplog) -> None:
    monkeypatch.setattr(chart, "cjk_font", lambda: None)
    english = chart.render(WEEKS, chart_labels(translator("en")))
    assert chart.render(WEEKS, chart_labels(translator("ja"))) == english
    assert "no font with Japanese glyphs" in caplog.text
    assert not chart_labels(translator("en")).needs_cjk()


def test_the_line_is_the_nrr_of_the_text_and_weeks_without_a_year_of_history_are_gaps(db) -> None:
    from datetime import date

    from digest.report import build
    from settings import Rules
    from tests.digest.test_kpi import history

    history(db)  # history from 2025-10-31 on
    with db.session() as s:
        report = build(s, date(2026, 11, 1), Rules.load(None))  # month October; the chart ends Oct 31
    line = [w["nrr"] for w in report["trend"]]
    assert report["trend"][-1]["week"] == "2026-10-31" and line[-1] == report["nrr"] == 53.3
    # a year before Aug 15 .. Oct 24 there is no account history: no figure, not 100 %
    assert line[:-1] == [None] * 11
    fig = chart.figure(report["trend"], chart_labels(translator("en")))
    (twin,) = fig.axes[1:]
    ys = list(twin.lines[0].get_ydata())
    assert ys[-1] == 53.3 and all(math.isnan(y) for y in ys[:-1])


def test_a_book_without_health_data_gets_a_chart_that_says_so(db) -> None:
    from datetime import date

    from settings import Rules

    with db.session() as s:
        weeks = chart.trend(s, date(2026, 11, 22), Rules.load(None))
    assert all(w["green"] == w["yellow"] == w["red"] == 0 and w["nrr"] is None for w in weeks)
    labels = chart_labels(translator("en"))
    (ax,) = chart.figure(weeks, labels).axes  # no bars, no line axis
    assert [t.get_text() for t in ax.texts] == [labels.no_health] and labels.no_health.startswith("No health")
    assert not ax.patches and list(ax.get_yticks()) == []
    assert chart_labels(translator("ja")).no_health.startswith("ヘルスのデータはまだありません")
    assert chart.render(weeks, labels).startswith(b"\x89PNG")
