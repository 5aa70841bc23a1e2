"""One wording for the reasons: the CLI's English is the cards' English, and both languages have it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from accounts.reasons import TEXTS, catalog, describe
from bot.i18n import TEMPLATES, translator
from bot.views.alert_card import reason_text

SAMPLES: dict[str, dict[str, Any]] = {
    "usage_drop": {"metric": "active_users", "recent": 12, "baseline": 40, "pct": 70, "recent_days": 7},
    "inactive": {"days": 20},
    "inactive_long": {"days": 90},
    "low_utilization": {"active": 3, "seats": 20, "pct": 15},
    "nps_low": {"score": 4},
    "support_load": {"recent": 9, "usual": 2, "recent_days": 7},
    "health_red": {"score": 31},
    "seats_full": {"active": 20, "seats": 20, "pct": 100},
    "usage_growth": {"metric": "api_calls", "recent": 50, "baseline": 30, "pct": 67, "recent_days": 7},
    "plan_limit": {"metric": "projects", "value": 95, "plan": "Pro", "limit": 100},
    "model_churn": {"pct": 41.5, "risk": "high", "drivers": [{"text": "logins fell", "text_ja": "減少"}]},
    "rules_decide": {"churns": 500, "weeks": 26, "have_churns": 3, "have_weeks": 4},
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_the_cli_says_what_the_card_says(code: str) -> None:
    params = SAMPLES[code]
    assert describe(code, params) == reason_text(translator("en"), {"code": code, "params": params})


def test_each_reason_is_written_once_in_each_language() -> None:
    en, ja = catalog("en"), catalog("ja")
    assert set(en) == set(ja) and all(k.startswith("reason.") for k in en)
    assert {f"reason.{c}" for c in SAMPLES} <= set(en)
    for locale in ("en", "ja"):  # not a second copy in the Slack labels
        labels = yaml.safe_load((TEMPLATES / locale / "strings.yml").read_text(encoding="utf-8"))
        assert not [k for k in labels if k.startswith("reason.")]
    assert sorted(p.name for p in TEXTS.glob("*.yml")) == ["en.yml", "ja.yml"]


def test_japanese_cards_read_the_shared_texts() -> None:
    text = reason_text(translator("ja"), {"code": "inactive", "params": {"days": 20}})
    assert text == "20日間、利用がありません"


def test_an_unknown_code_reads_as_itself() -> None:
    assert describe("no_such_reason", {}) == "no_such_reason"
