"""Japanese and English are both first class: same keys, same templates, and a Japanese user sees Japanese."""

from __future__ import annotations

from dataclasses import replace

import yaml

from bot.i18n import TEMPLATES, normalize_locale, translator
from tests.bot.conftest import REP, VALID, Baton


def test_both_languages_have_the_same_strings_and_templates() -> None:
    en = yaml.safe_load((TEMPLATES / "en" / "strings.yml").read_text(encoding="utf-8"))
    ja = yaml.safe_load((TEMPLATES / "ja" / "strings.yml").read_text(encoding="utf-8"))
    assert set(en) == set(ja)
    assert {p.name for p in (TEMPLATES / "en").iterdir()} == {p.name for p in (TEMPLATES / "ja").iterdir()}
    for key in en:  # same placeholders, so formatting never fails in one language only
        assert sorted(_fields(en[key])) == sorted(_fields(ja[key])), key


def _fields(text: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


def test_slack_locales_map_to_supported_languages() -> None:
    assert normalize_locale("ja-JP") == "ja"
    assert normalize_locale("en-GB") == "en"
    assert normalize_locale("fr-FR", default="ja") == "ja"
    assert normalize_locale(None) == "en"


def test_money_and_dates_are_formatted_per_locale() -> None:
    from datetime import date
    from decimal import Decimal

    ja, en = translator("ja"), translator("en")
    assert ja.money(Decimal("1200000"), "JPY") == "¥1,200,000"
    assert en.money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert ja.day(date(2026, 11, 3)) == "2026年11月3日"
    assert en.day(date(2026, 11, 3)) == "Nov 3, 2026"


def test_a_japanese_user_gets_the_modal_and_errors_in_japanese(baton: Baton) -> None:
    baton.slack.locales[REP] = "ja-JP"
    baton.command("株式会社サンプル")
    view = baton.slack.wait_for("views.open")[0].args["view"]
    assert view["title"]["text"] == "引き継ぎを作成"
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert "解決したい課題" in labels and "更新日" in labels
    body = baton.submit(view, {**VALID, "seats": 0}).json()
    assert body["errors"] == {"seats": "席数は1以上にしてください。"}


def test_cards_follow_the_workspace_language(db, slack, settings) -> None:

    import httpx
    from slack_sdk import WebClient

    from bot.app import create_app
    from bot.server import create_wsgi
    from tests.bot.conftest import Baton as B
    from tests.clocks import FakeClock
    from tests.executors import TrackingExecutor
    from tests.servers import serving

    listeners = TrackingExecutor(4)
    app = create_app(
        replace(settings, locale="ja"),
        db,
        clock=FakeClock(),
        client=WebClient(token=slack.token, base_url=slack.base_url),
        listener_executor=listeners,
    )
    with serving(create_wsgi(app, db), threads=4) as url, httpx.Client(timeout=10) as http:
        b = B(url, slack, db, FakeClock(), http, listeners)
        b.command("Acme")
        view = slack.wait_for("views.open")[0].args["view"]
        assert view["title"]["text"] == "New handoff"  # the user's own Slack language (en-US) wins
        b.submit(view, VALID)
        slack.wait_for("chat.getPermalink")
        b.wait_idle()
    card = str(slack.of("chat.postMessage")[0].args["blocks"])
    assert (
        "引き継ぎ：Acme" in card and "¥800,000／月（年額換算 ¥9,600,000）" in card and "2026年12月1日" in card
    )
    assert "受理する" in card and "チェックリスト 5/12 項目" in card
    # punctuation as Japanese is written: 「未記入：A、B」, never ": " or ", "
    assert "未記入：" in card
    missing = card.split("未記入：", 1)[1].split("'", 1)[0]
    assert "、" in missing and ", " not in missing and ": " not in missing


def test_fit_never_cuts_inside_an_entity_or_a_mention() -> None:
    from bot.text import Mrkdwn, fit

    assert fit(Mrkdwn("abc &amp; def"), 7) == "abc …"
    assert fit(Mrkdwn("hi <@U123456> there"), 9) == "hi …"
    assert fit(Mrkdwn("short"), 10) == "short"


def test_dates_in_sentences_carry_the_year_only_when_it_is_not_this_year() -> None:
    from datetime import date

    from bot.i18n import translator

    ja, en, today = translator("ja"), translator("en"), date(2026, 11, 23)
    assert ja.day(date(2026, 12, 3), today=today) == "12月3日"
    assert ja.day(date(2027, 1, 5), today=today) == "2027年1月5日"
    assert en.day(date(2026, 12, 3), today=today) == "Dec 3"
    assert en.day(date(2026, 12, 3)) == "Dec 3, 2026"  # no today (a card's contract term): always the year


def test_the_japanese_overdue_reminder_says_the_deadline_has_passed() -> None:
    from bot.i18n import translator
    from bot.views.touches import reminder_blocks

    payload = {
        "recipient": "U1",
        "day": "2026-12-06",
        "reminders": [
            {
                "account_id": 1,
                "account": "Acme",
                "stage": "overdue",
                "touch": "welcome",
                "due": "2026-12-03",
                "tier": "mid",
            }
        ],
    }
    text = str(reminder_blocks(translator("ja"), payload))
    assert "ウェルカムの期限（12月3日）を過ぎています" in text and "2026-12-03" not in text


def test_the_terminal_lines_have_the_same_keys_and_placeholders_in_both_languages() -> None:
    en = yaml.safe_load((TEMPLATES / "en" / "cli.yml").read_text(encoding="utf-8"))
    ja = yaml.safe_load((TEMPLATES / "ja" / "cli.yml").read_text(encoding="utf-8"))
    assert set(en) == set(ja) and all(k.startswith("cli.") for k in en)
    for key in en:
        if key.startswith("cli.date"):  # each language picks the parts of a date it writes
            assert {*_fields(en[key]), *_fields(ja[key])} <= {"iso", "year", "month", "day"}, key
            continue
        assert sorted(_fields(en[key])) == sorted(_fields(ja[key])), key
    assert translator("ja").t("cli.migrate.done") == "データベースは最新の状態です。"
