from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.demo import run_demo
from bot.render_text import mrkdwn_to_text, render_blocks
from settings import Settings
from storage import Database

ROOT = Path(__file__).resolve().parents[2]


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/team.db"  # the team's own database: the demo keeps out
    return subprocess.run(
        [sys.executable, "app.py", "demo", "--db", str(tmp_path / "demo.db"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_seeds_and_shows_cards_without_slack_and_can_run_again(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    out = " ".join(first.stdout.split())  # wrapping aside
    assert first.stdout.count("▶ card in #cs-handoffs") == 3
    assert "Handoff: 株式会社ミライ物流" in out and "Checklist 12/12 items" in out
    assert "[ Accept ]" in out and "ARR $21,600" in out and "Tech touch (suggested)" in out
    assert "assigned you as CSM" in out and "checklist items still missing" in out
    assert "Churn risk: Northwind Analytics" in out and "(−65%)" in out  # usage seeded, scanned
    assert "Upsell opportunity: 株式会社ミライ物流" in out and "[ Hand to inside sales ]" in out
    assert "reminders, direct message to @U0DEMOCSM" in out and "株式会社ミライ物流 · kickoff due" in out
    assert "Northwind Analytics · renews" in out and "[ Log touch ]" in out
    again = _demo(tmp_path, "--locale", "ja", "--keep")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("へのカード") == 3  # reused, not duplicated; the framing in Japanese too
    assert again.stdout.count("へのアラート") == 2  # one alert per account and kind, however often it runs
    assert "引き継ぎ：Northwind Analytics" in again.stdout and "受理する" in again.stdout
    assert not (tmp_path / "team.db").exists() and f"its own database {tmp_path / 'demo.db'}" in out
    fresh = _demo(tmp_path)  # starts over: the same story, whatever the last run left
    assert fresh.returncode == 0 and fresh.stdout.count("▶") == first.stdout.count("▶")


@pytest.mark.parametrize("utc_hour", [3, 16, 23])  # 16:00 and 23:00 UTC: Tokyo is already on the next day
def test_demo_counts_the_teams_day_at_any_hour(tmp_path: Path, utc_hour: int) -> None:
    now = datetime(2026, 12, 1, utc_hour, 30, tzinfo=UTC)
    db = Database(f"sqlite:///{tmp_path}/demo.db")
    db.upgrade()
    out = io.StringIO()
    assert run_demo(Settings(), db, locale="en", out=out, clock=lambda: now) == 0
    text = " ".join(out.getvalue().split())
    tokyo_today = (now + timedelta(hours=9)).date()
    shown = tokyo_today + timedelta(days=6)
    assert f"▶ {shown:%b} {shown.day}, {shown.year}, 08:30: reminders" in text
    assert "reminders, direct message to @U0DEMOCSM" in text and "kickoff due" in text
    assert "Churn risk: Northwind Analytics" in text


def test_mrkdwn_renders_as_a_reader_sees_it() -> None:
    assert mrkdwn_to_text("*Plan* &lt;!channel&gt; &amp; <@U1> <https://x.example|docs>") == (
        "Plan <!channel> & @U1 docs (https://x.example)"
    )
    assert mrkdwn_to_text("<!date^1700000000^{date}|2023-11-14>") == "2023-11-14"


def test_blocks_render_to_text() -> None:
    text = render_blocks(
        [
            {"type": "header", "text": {"type": "plain_text", "text": "Title"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Seats*\n5"}]},
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}}],
            },
        ]
    )
    assert text.splitlines() == ["Title", "══════════", "  Seats: 5", "[ Go ]"]
