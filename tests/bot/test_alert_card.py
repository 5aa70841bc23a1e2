"""The alert card's words: metric display names, non-alarming upsell markers, Japanese as people write it,
dates in the team's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.i18n import translator
from bot.render_text import render_blocks
from bot.views.alert_card import alert_card, reason_text, thread_note
from settings import Rules
from storage.models import Account, Alert

RULES = Rules.load(None)
DROP = {
    "code": "usage_drop",
    "params": {"metric": "active_users", "recent": 12, "baseline": 40, "pct": 70, "recent_days": 7},
}
RENEWAL = {"code": "renewal_risk", "params": {"days": 44, "date": "2027-01-15", "band": "yellow"}}


def _alert(kind: str = "churn_risk", severity: str = "high", **kw) -> Alert:
    return Alert(
        id=7,
        account_id=1,
        kind=kind,
        state=kw.pop("state", "open"),
        severity=severity,
        score=48,
        reasons=kw.pop("reasons", [DROP, RENEWAL]),
        as_of=date(2026, 11, 30),
        **kw,
    )


ACCOUNT = Account(id=1, name="Acme", renewal_date=date(2027, 1, 15))


def _text(blocks: list[dict]) -> str:
    return str(blocks)


def test_reasons_name_metrics_as_people_say_them_in_each_language() -> None:
    assert reason_text(translator("en"), DROP) == (
        "active users averaged 12/day over the last 7 days vs 40/day before (−70%)"
    )
    ja = translator("ja")
    assert reason_text(ja, DROP) == "直近7日間のアクティブユーザー数は1日平均12（それ以前は40、−70%）"
    assert (
        reason_text(ja, RENEWAL) == "契約更新まで残り44日（2027年1月15日）ですが、ヘルススコアが「注意」です"
    )  # no ISO date
    assert reason_text(translator("en"), RENEWAL) == "Renews in 44 days (Jan 15, 2027) while health is yellow"


def test_configured_metric_names_are_used_on_cards_and_threads(tmp_path) -> None:
    path = tmp_path / "baton.yml"
    path.write_text(
        "health:\n  metric_names:\n    active_users: {en: seats in use, ja: 利用中の席}\n    pings: Pings\n"
    )
    rules = Rules.load(path)
    assert rules.health.metric_names["logins"]["ja"] == "ログイン数"  # the built-ins stay
    card = _text(alert_card(translator("ja"), _alert(), ACCOUNT, rules=rules))
    assert "直近7日間の利用中の席" in card and "active_users" not in card
    ping = {"code": "usage_growth", "params": {"metric": "pings", "recent": 5, "baseline": 2, "pct": 150}}
    note = thread_note(translator("en"), {"note": "worsened", "reasons": [ping]}, rules.health.metric_names)
    assert "Pings averaged 5/day over the last 7 days vs 2/day before (+150%)" in note


def test_a_bad_metric_names_setting_says_what_to_fix(tmp_path) -> None:
    import pytest

    from settings import ConfigError

    path = tmp_path / "baton.yml"
    path.write_text("health:\n  metric_names:\n    logins: {fr: connexions}\n")
    with pytest.raises(ConfigError, match=r"metric_names\.logins: unknown language"):
        Rules.load(path)


def test_upsell_is_good_news_and_churn_keeps_red_and_yellow() -> None:
    en = translator("en")
    upsell = _text(alert_card(en, _alert("upsell", "high", reasons=[]), ACCOUNT, rules=RULES))
    assert "🟢 High" in upsell and "Priority" in upsell and "🔴" not in upsell
    shown = render_blocks(alert_card(en, _alert("upsell", "high", reasons=[]), ACCOUNT, rules=RULES))
    assert "Priority: 🟢 High" in shown and "：" not in shown  # an emoji is no reason for a Japanese colon
    assert "💡 Medium" in _text(alert_card(en, _alert("upsell", "medium", reasons=[]), ACCOUNT, rules=RULES))
    assert "🔴 High" in _text(alert_card(en, _alert(), ACCOUNT, rules=RULES))
    assert "🟡 Medium" in _text(alert_card(en, _alert(severity="medium"), ACCOUNT, rules=RULES))


def test_the_card_says_how_far_the_usage_data_goes_and_dates_read_naturally() -> None:
    ja = _text(alert_card(translator("ja"), _alert(), ACCOUNT, rules=RULES))
    assert "2026年11月30日までの利用データ · 契約更新日：2027年1月15日" in ja
    en = _text(alert_card(translator("en"), _alert(), ACCOUNT, rules=RULES))
    assert "Usage data through Nov 30, 2026 · renewal Jan 15, 2027" in en


def test_the_snooze_end_falls_back_to_the_teams_day_not_utcs() -> None:
    until = datetime(2026, 12, 8, 20, 0, tzinfo=UTC)  # already Dec 9 in Tokyo
    snoozed = _alert(state="snoozed", snoozed_until=until)
    card = _text(alert_card(translator("ja"), snoozed, ACCOUNT, rules=RULES))
    assert "|2026年12月9日>" in card and "2026-12-08" not in card


def test_the_card_reads_the_model_reason_in_japanese() -> None:
    reason = {
        "code": "model_churn",
        "params": {"pct": 34.5, "risk": "high", "drivers": [{"text": "seats 2", "text_ja": "席数：2"}]},
    }
    assert reason_text(translator("ja"), reason) == "解約確率34.5%（高）。主な要因：席数：2"
    assert reason_text(translator("en"), reason) == "churn probability 34.5% (high); drivers: seats 2"
