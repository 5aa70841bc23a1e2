"""The backtest's PNG: written where asked, with both methods' curves from the backtest's own figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.backtest import run
from model.chart import figure, lines
from model.cli import run_model
from settings import Rules
from storage import Database
from tests.model.book import NOW, build

RULES = Rules.load(None)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.one_database
def test_backtest_writes_the_png_where_asked_and_says_so(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = build(db, accounts=160, weeks=40)
    path = tmp_path / "bt.png"
    code = run_model(db, RULES, "backtest", as_of=book.end, clock=lambda: NOW, png=str(path), as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["png"] == str(path)
    assert path.read_bytes().startswith(PNG_MAGIC)
    curves = out["curves"]
    for method in ("model", "rules"):  # both curves, alerts rising as the threshold falls
        xs = [p["alerts_per_100_week"] for p in curves[method]]
        assert len(xs) > 3 and xs == sorted(xs) and xs[-1] > xs[0]
        assert all(0 <= p["churn_recall_7_90d"] <= 1 for p in curves[method])


@pytest.mark.one_database
def test_the_chart_plots_the_backtest_curves_and_operating_points(db: Database) -> None:
    book = build(db, accounts=160, weeks=40)
    with db.session() as s:
        bt = run(s, book.end, RULES.health)
    drawn = lines(figure(bt))
    for method in ("model", "rules"):
        want = [(p["alerts_per_100_week"], p["churn_recall_7_90d"] * 100) for p in bt.curves[method]]
        assert len(want) > 3 and _flat(drawn[method]) == pytest.approx(_flat(want))
    at = bt.model  # where the model stood at its budget: drawn when the book has churns to count
    if at["churn_recall_7_90d"] is None:
        assert "model.point" not in drawn
    else:
        point = [at["churn_alerts_per_100_week"], at["churn_recall_7_90d"] * 100]
        assert _flat(drawn["model.point"]) == pytest.approx(point)


def _flat(points: list[tuple[float, float]]) -> list[float]:
    return [v for p in points for v in p]


@pytest.mark.one_database
def test_a_chart_path_that_cannot_be_written_is_one_line(
    db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = build(db, accounts=160, weeks=40)
    bad = tmp_path / "missing" / "bt.png"
    assert run_model(db, RULES, "backtest", as_of=book.end, clock=lambda: NOW, png=str(bad)) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--png" in err and str(bad) in err
