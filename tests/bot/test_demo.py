from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.demo import run_demo
from bot.render_text import mrkdwn_to_text, render_blocks
from crm.demo import DEAL_ID, TOKEN, DemoHubSpot
from settings import Settings
from storage import Database
from storage.models import CrmDeal, CrmWriteback, Handoff, Outbox

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
    assert first.stdout.count("▶ card in #cs-handoffs") == 4  # three seeds and the won deal's
    assert "Handoff: 株式会社ミライ物流" in out and "Checklist 12/12 items" in out
    assert "[ Accept ]" in out and "ARR $21,600" in out and "Tech touch (suggested)" in out
    assert "assigned you as CSM" in out and "checklist items still missing" in out
    assert "Churn risk: Northwind Analytics" in out and "(−65%)" in out  # usage seeded, scanned
    assert "Upsell opportunity: 株式会社ミライ物流" in out and "[ Hand to inside sales ]" in out
    assert "reminders, direct message to @U0DEMOCSM" in out and "株式会社ミライ物流 · kickoff due" in out
    assert "Northwind Analytics · renews" in out and "[ Log touch ]" in out
    again = _demo(tmp_path, "--locale", "ja", "--keep")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("へのカード") == 4  # reused, not duplicated; the framing in Japanese too
    assert "取り込み済み1件" in again.stdout  # the won deal too: taken once, its handoff reused
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


WON = {  # what each language shows of the won deal: the DM, three prefilled fields, the note's heading
    "en": (
        "Congratulations on winning Aoba Manufacturing - Enterprise (¥9,300,000)!",
        "[ Start handoff ]",
        ("Seats: 60", "Price: ¥750,000", "Decision maker: Haruto Kobayashi"),
        "Handoff: Aoba Manufacturing",
    ),
    "ja": (
        "あおば製作所 - Enterprise（¥9,300,000）の受注、おめでとうございます！",
        "[ 引き継ぎを始める ]",
        ("席数（ユーザー数）：60", "金額：¥750,000", "決裁者：小林 陽翔"),
        "引き継ぎ：株式会社あおば製作所",
    ),
}


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_demo_runs_a_won_deal_from_the_fake_hubspot_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locale: str
) -> None:
    def no_network(*_: object) -> None:
        raise AssertionError("the demo opened a connection")

    monkeypatch.setattr("socket.socket.connect", no_network)
    monkeypatch.setattr("socket.getaddrinfo", no_network)
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    db = Database(f"sqlite:///{tmp_path}/demo.db")
    db.upgrade()
    crm = DemoHubSpot(now=now, today=now.date(), locale=locale)
    out = io.StringIO()
    assert run_demo(Settings(), db, locale=locale, out=out, clock=lambda: now, crm=crm) == 0
    text = " ".join(out.getvalue().split())
    dm, button, fields, heading = WON[locale]
    assert dm in text and button in text
    assert all(f in text for f in fields)
    # the real client read the deal and its records through the transport, with the token
    calls = {(r.method, r.path.split("/2026-03/")[-1]) for r in crm.requests}
    assert {("POST", "deals/search"), ("POST", "deals/contacts/batch/read"), ("GET", "301")} <= calls
    assert all(r.status < 300 for r in crm.requests)
    with db.session() as s:
        deal = s.scalars(select(CrmDeal).where(CrmDeal.deal_id == DEAL_ID)).one()
        h = s.get(Handoff, deal.handoff_id)
        assert h is not None and h.submitted_by == "U0DEMOFS1" and h.seats == 60  # from the deal's form
        actions = s.scalars(select(Outbox.action).where(Outbox.action.like("crm_%"))).all()
        assert "crm_won_deal" in actions  # announce queued the owner's DM in the recording transaction
        written = {w.kind: w.object_id for w in s.scalars(select(CrmWriteback))}
        handoff_id, permalink = h.id, h.permalink
    # the write-back sender POSTed one note on the deal and the company, and the kickoff task
    notes = [r for r in crm.written() if r.path.endswith("/notes")]
    assert len(notes) == 1
    note = notes[0].body
    assert {a["to"]["id"] for a in note["associations"]} == {DEAL_ID, "7001"}
    assert heading in note["properties"]["hs_note_body"] and f"[baton-handoff-{handoff_id}]" in text
    assert permalink and permalink in note["properties"]["hs_note_body"] and permalink in text
    assert written["note"] in crm.objects["notes"] and written["task"] in crm.objects["tasks"]
    assert heading in text and "POST /crm/objects/2026-03/notes" in text


def test_the_demo_hubspot_refuses_a_wrong_token() -> None:
    crm = DemoHubSpot(now=datetime(2026, 12, 1, tzinfo=UTC), today=datetime(2026, 12, 1).date())
    with crm.client() as http:
        bad = http.post("https://api.hubapi.demo/crm/objects/2026-03/deals/search", json={})
        good = http.post(
            "https://api.hubapi.demo/crm/objects/2026-03/deals/search",
            json={"filterGroups": [{"filters": [{"propertyName": "dealstage", "operator": "IN",
                                                 "values": ["closedwon"]}]}]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
    assert bad.status_code == 401
    assert [r["id"] for r in good.json()["results"]] == [DEAL_ID]
