"""The digest as people read it: sections, last week's changes, both languages, Slack's limits; and
the Monday job that posts it once through the outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from slack_sdk import WebClient

from bot.delivery import Delivery
from bot.i18n import translator
from bot.render_text import render_blocks
from bot.views.digest import digest_blocks
from digest.report import build
from jobs.scheduler import Jobs
from settings import Rules, Settings
from storage import Database
from tests.blockkit import check_blocks
from tests.clocks import FakeClock
from tests.digest.test_kpi import AS_OF, history
from tests.fakeslack import FakeSlack

RULES = Rules.load(None)


def test_digest_blocks_in_both_languages_within_slacks_limits(db: Database) -> None:
    history(db)
    with db.session() as s:
        report = build(s, AS_OF, RULES)
    # monthly figures against the month before: September (Aug 31: A B C; Sep 30: A B C D) lost nobody
    assert report["previous"]["churn_rate"] == 0.0 and report["previous_period"]["start"] == "2026-09-01"
    assert report["periods"]["churn_rate"] == "month" and report["periods"]["upsell_count"] == "week"
    assert report["renewals"] == {"next_30_days": 0, "next_60_days": 0, "next_90_days": 0}
    for locale in ("en", "ja"):
        blocks = digest_blocks(translator(locale), report)
        assert check_blocks(blocks, where=locale) == []
    en = " ".join(render_blocks(digest_blocks(translator("en"), report)).split())
    assert "Churn rate: 25.0% ▲25pt vs last month" in en and "vs last week" not in en.split("Upsell")[0]
    assert "Expansions: 1 ▲1 vs last week" in en
    assert "Net revenue retention (12 months): 53.3%" in en and "Added MRR: ¥30,000" in en
    ja = " ".join(render_blocks(digest_blocks(translator("ja"), report)).split())
    assert "週次ダイジェスト（2026年11月23日）" in ja and "カスタマーサクセス（2026年10月）" in ja
    assert "オンボーディング完了率：データ不足" in ja and "チャーンレート：25.0% 前月比 ▲25pt" in ja
    assert "アップセル件数：1 前週比 ▲1" in ja and "直近7日間" in ja and "先週比" not in ja
    # each rate's denominator in the reader's language, money and dates formatted for it
    assert (
        "チャーンレート：2026年10月初めの顧客数（4社）、" in ja
        and "解約日は顧客データのスナップショットから判定" in ja
    )
    assert "2026年10月初めの顧客4社のMRR（¥500,000）" in ja
    assert "Churn rate: customers at the start of October 2026 (4)" in en
    assert "MRR on Oct 31, 2025 of the 3 customers then (¥450,000)" in en


def test_the_monday_job_posts_the_digest_once(db: Database) -> None:
    history(db)
    slack = FakeSlack().start()
    try:
        settings = replace(Settings(rules=RULES), digest_channel="CDIGEST1", slack_api_url=slack.base_url)
        monday_morning = FakeClock(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # 09:00 in Tokyo
        client = WebClient(token=slack.token, base_url=slack.base_url)
        nodes = [
            Jobs(
                db,
                settings,
                monday_morning,
                deliver=lambda: Delivery(db, client, settings, monday_morning).run(),
                instance=f"n{i}",
            )
            for i in range(2)
        ]
        assert [j.digest_job() for j in nodes] == [True, False]
        posts = slack.of("chat.postMessage")
        assert len(posts) == 1 and posts[0].args["channel"] == "CDIGEST1"
        assert "Weekly digest" in str(posts[0].args["blocks"])
        (png,) = slack.uploads.values()  # the chart, through files.getUploadURLExternal + upload URL
        assert png.startswith(b"\x89PNG")
        (done,) = slack.of("files.completeUploadExternal")
        digest_ts = slack.messages["CDIGEST1"][0]["ts"]
        assert done.args["channel_id"] == "CDIGEST1" and done.args["thread_ts"] == digest_ts
        assert slack.problems == []
    finally:
        slack.stop()


def test_build_reports_its_steps_to_a_progress_callback(db: Database) -> None:
    from digest.report import STEPS

    history(db)
    seen: list[int] = []
    with db.session() as s:
        build(s, AS_OF, RULES, progress=seen.append)
    assert seen == list(range(1, STEPS + 1))
