"""The digest chart in both languages: Japanese labels need a CJK font, and never render as boxes."""

from __future__ import annotations

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
        "mrr_retention": 100 - i * 0.5,
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
