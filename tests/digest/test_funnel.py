"""THE MODEL funnel and inside-sales activity: ingest of company metrics, the domain's formulas on a
small fixed data set, and how the digest shows them."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from bot.i18n import translator
from bot.render_text import render_blocks
from bot.views.digest import digest_blocks
from digest import funnel
from digest.report import build
from ingest import IngestError, ingest_metrics, records
from settings import Rules
from storage import Database
from tests.blockkit import check_blocks

AS_OF = date(2026, 11, 23)  # this week: Nov 16..22; last week: Nov 9..15
THIS_WEEK = {  # per day, 7 days
    "visitors": 1000 / 7,
    "leads": 120 / 7,
    "opportunities": 30 / 7,
    "wins": 6 / 7,
    "renewals_due": 4 / 7,
    "renewals": 3 / 7,
}


def load(db: Database, text: str) -> int:
    with db.session() as s:
        return ingest_metrics(s, records(io.StringIO(text), "csv")).rows


def csv(rows: dict[date, dict[str, float]]) -> str:
    return "date,metric,value\n" + "".join(
        f"{d.isoformat()},{m},{v}\n" for d, values in rows.items() for m, v in values.items()
    )


def seed(db: Database, inside_sales: bool = True) -> None:
    """This week: 1,000 visitors, 120 leads, 30 opportunities, 6 wins, 3 of 4 renewals; last week 100
    leads and 20 opportunities. Inside sales this week: 400 calls in 20 hours, 100 connected, 1,200
    minutes of talk and 400 of after-call work, 500 emails sent and 150 opened, 12 meetings."""
    rows: dict[date, dict[str, float]] = {}
    week = [AS_OF - timedelta(days=n) for n in range(1, 8)]
    rows[week[0]] = {
        "visitors": 400,
        "leads": 50,
        "opportunities": 12,
        "wins": 6,
        "renewals_due": 4,
        "renewals": 3,
    }
    rows[week[3]] = {"visitors": 600, "leads": 70, "opportunities": 18, "wins": 0}
    if inside_sales:
        rows[week[0]] |= {"calls": 150, "calls_connected": 40, "call_hours": 8, "talk_minutes": 500}
        rows[week[6]] = {"calls": 250, "calls_connected": 60, "call_hours": 12, "talk_minutes": 700}
        rows[week[6]] |= {"after_call_minutes": 400, "emails_sent": 500, "emails_opened": 150, "meetings": 12}
    rows[AS_OF - timedelta(days=9)] = {"leads": 100, "opportunities": 20}
    rows[AS_OF] = {"leads": 999}  # as_of itself is not in the week: the week ends the day before
    load(db, csv(rows))


def test_the_weeks_funnel_and_inside_sales_match_hand_computed_values(db: Database) -> None:
    seed(db)
    with db.session() as s:
        f = funnel.week(s, AS_OF)
    assert f["period"] == {"start": "2026-11-16", "end": "2026-11-22"}
    assert (f["visitors"], f["leads"], f["opportunities"], f["wins"]) == (1000, 120, 30, 6)
    assert (f["acquisition_rate"], f["opportunity_rate"], f["win_rate"], f["renewal_rate"]) == (
        12.0,
        25.0,
        20.0,
        75.0,
    )
    assert (f["calls"], f["calls_per_hour"], f["contact_rate"], f["email_open_rate"]) == (
        400,
        20.0,
        25.0,
        30.0,
    )
    assert (f["meetings"], f["conversion_rate"], f["att_minutes"], f["aht_minutes"]) == (12, 25.0, 3.0, 4.0)
    prev = f["previous"]
    assert (prev["leads"], prev["opportunity_rate"], prev["win_rate"], prev["visitors"]) == (
        100,
        20.0,
        None,
        None,
    )
    assert prev["has_funnel"] and not prev["has_inside_sales"]


def test_without_metrics_nothing_is_made_up(db: Database) -> None:
    with db.session() as s:
        f = funnel.week(s, AS_OF)
    assert not f["has_funnel"] and not f["has_inside_sales"]
    assert f["leads"] is None and f["win_rate"] is None and f["calls_per_hour"] is None


def test_bad_metric_lines_are_all_reported_and_a_day_can_be_corrected(db: Database) -> None:
    text = (
        "date,metric,value\n2026-11-20,leads,5\n2026-11-20,leeds,3\n2026-11-21,wins,-1\n2026-11-20,leads,6\n"
    )
    with pytest.raises(IngestError) as exc:
        load(db, text + "2026-13-01,wins,1\n")
    assert [(p.line, p.message.split(" ")[0]) for p in exc.value.problems] == [
        (3, "metric"),
        (4, "value"),
        (5, "leads"),  # the same day and metric twice in one file
        (6, "date"),
    ]
    assert load(db, "date,metric,value\n2026-11-20,leads,5\n") == 1
    assert load(db, "date,metric,value\n2026-11-20,Leads,7\n") == 1  # re-sent: corrected, not added
    with db.session() as s:
        assert funnel.totals(s, date(2026, 11, 20), date(2026, 11, 20)) == {"leads": 7.0}


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_the_digest_shows_the_funnel_and_inside_sales_with_changes(db: Database, locale: str) -> None:
    seed(db)
    with db.session() as s:
        report = build(s, AS_OF, Rules.load(None))
    blocks = digest_blocks(translator(locale), report)
    assert check_blocks(blocks, limit=50, where="digest") == []
    text = " ".join(render_blocks(blocks).split())
    if locale == "en":
        assert "THE MODEL funnel (last 7 days)" in text
        assert "Lead → opportunity: 25.0% ▲5pt vs last week" in text and "Leads: 120 ▲20 vs last week" in text
        assert "Win rate: 20.0%" in text and "Renewal rate: 75.0%" in text
        assert "Inside sales (last 7 days)" in text and "Calls per hour: 20" in text
        assert "Average handling time: 4 min" in text and "Email open rate: 30.0%" in text
    else:
        assert (
            "THE MODELファネル（直近7日間）" in text and "商談化率（リード→商談）：25.0% 前週比 ▲5pt" in text
        )


def test_a_digest_without_metrics_says_how_to_send_them_and_leaves_inside_sales_out(db: Database) -> None:
    with db.session() as s:
        report = build(s, AS_OF, Rules.load(None))
    text = " ".join(render_blocks(digest_blocks(translator("en"), report)).split())
    assert "No funnel metrics yet" in text and "python app.py ingest metrics FILE" in text
    assert "Inside sales" not in text
