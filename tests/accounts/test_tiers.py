"""The one touch-tier rule: the account's override, else its handoff's, else suggested from its MRR."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from accounts.tiers import Tier, suggest_tier, tier_of
from settings import Rules


def test_tier_comes_from_annual_value_against_per_currency_thresholds() -> None:
    tiers = Rules.load(None).touch_tiers
    assert suggest_tier(Decimal(500_000), "JPY", "monthly", tiers) == Tier.HIGH  # ARR 6,000,000
    assert suggest_tier(Decimal(499_999), "JPY", "monthly", tiers) == Tier.MID
    assert suggest_tier(Decimal(1_199_999), "JPY", "annual", tiers) == Tier.TECH
    assert suggest_tier(Decimal(10_000), "USD", "annual", tiers) == Tier.MID
    assert suggest_tier(Decimal(10), "XYZ", "annual", tiers) == Tier.MID  # no rule: middle tier


def test_tier_thresholds_come_from_the_rules_file(tmp_path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("touch_tiers:\n  USD: {high: 1000, mid: 100}\n")
    tiers = Rules.load(path).touch_tiers
    assert suggest_tier(Decimal(100), "USD", "monthly", tiers) == Tier.HIGH


def _account(**kw: Any) -> Any:
    return SimpleNamespace(**{"touch_tier": None, "mrr": None, "currency": None, **kw})


def test_the_accounts_own_tier_wins_over_its_handoffs() -> None:
    """Where `/handoff tier` keeps an override: the onboarding plan and the reminders both follow it."""
    tiers = Rules.load(None).touch_tiers
    handoff = SimpleNamespace(touch_tier="high")
    assert tier_of(_account(touch_tier="tech"), handoff) == "tech"
    assert tier_of(_account(touch_tier="tech"), handoff, tiers) == "tech"
    assert tier_of(_account(), handoff) == "high"
    assert tier_of(_account(mrr=Decimal(1)), handoff, tiers) == "high"  # a handoff's tier beats the MRR


def test_an_account_without_handoff_is_suggested_a_tier_from_its_mrr() -> None:
    tiers = Rules.load(None).touch_tiers
    assert tier_of(_account(mrr=Decimal(500_000), currency="JPY"), None, tiers) == Tier.HIGH  # ARR 6,000,000
    assert tier_of(_account(mrr=Decimal(100_000), currency="JPY"), None, tiers) == Tier.MID
    assert tier_of(_account(mrr=Decimal(1_000), currency="JPY"), None, tiers) == Tier.TECH
    assert tier_of(_account(mrr=None, currency="JPY"), None, tiers) == "tech"  # nothing to go on
    assert tier_of(_account(mrr=Decimal(10**9), currency="JPY")) == "tech"  # no thresholds given
