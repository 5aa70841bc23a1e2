"""The touch tier: how much of a person's time an account gets (high, mid or tech touch). One rule
for the onboarding plan, the reminders, the tier override and the handoff form's suggestion."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from settings import TierThresholds

if TYPE_CHECKING:
    from storage.models import Account, Handoff


class Tier(StrEnum):
    HIGH = "high"
    MID = "mid"
    TECH = "tech"


class BillingPeriod(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"


def annual_value(amount: Decimal, billing_period: str) -> Decimal:
    return amount * 12 if billing_period == BillingPeriod.MONTHLY else amount


def suggest_tier(
    amount: Decimal, currency: str, billing_period: str, thresholds: dict[str, TierThresholds]
) -> Tier:
    """High / mid / tech touch from the annual contract value, against per-currency thresholds."""
    t = thresholds.get(currency)
    if t is None:
        return Tier.MID  # no rule for this currency: the middle tier is the safe default
    arr = annual_value(amount, billing_period)
    if arr >= t.high:
        return Tier.HIGH
    if arr >= t.mid:
        return Tier.MID
    return Tier.TECH


def tier_of(
    account: Account, handoff: Handoff | None = None, thresholds: dict[str, TierThresholds] | None = None
) -> str:
    """The account's tier: its own (where a later override is kept) wins over its handoff's; an account
    known only from ingested data, without either, is suggested one from its MRR (``thresholds``, the
    rules' ``touch_tiers``), else tech touch. A handoff always has a tier, so with one no thresholds
    are needed."""
    tier = account.touch_tier or (handoff.touch_tier if handoff is not None else None)
    if tier is None and thresholds is not None and account.mrr is not None:
        tier = suggest_tier(account.mrr, account.currency or "", BillingPeriod.MONTHLY, thresholds)
    return tier or Tier.TECH.value
