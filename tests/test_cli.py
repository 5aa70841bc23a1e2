"""The shared CLI helpers: dates as each language writes them, bars only where someone watches."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest

from cli import day, progress_bar, reporter, words


def test_dates_read_as_each_language_writes_them() -> None:
    ja, en = words("ja"), words("en")
    assert day(ja, date(2026, 11, 30)) == "2026年11月30日"
    assert day(ja, date(2026, 11, 30), today=date(2026, 1, 5)) == "11月30日"
    assert day(ja, date(2027, 1, 5), today=date(2026, 11, 30)) == "2027年1月5日"
    assert day(en, date(2026, 11, 30), today=date(2026, 1, 5)) == "2026-11-30"
    assert day(ja, None) == "なし" and day(en, None) == "-"


def test_a_bar_is_drawn_only_on_a_terminal_or_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("BATON_PROGRESS", raising=False)
    for stream, drawn in ((StringIO(), False), (Terminal(), True)):
        with progress_bar("accounts", total=3, file=stream) as bar:
            tick = reporter(bar)
            for n in (1, 2, 3):
                tick(n)
        assert ("3/3" in stream.getvalue()) is drawn
    monkeypatch.setenv("BATON_PROGRESS", "1")
    with progress_bar("steps", total=2, file=(forced := StringIO())) as bar:
        reporter(bar)(2)
    assert "2/2" in forced.getvalue() and "steps" in forced.getvalue()
