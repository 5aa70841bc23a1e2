"""The neutral won deal both CRMs map to, and the handoff form it prefills.

``WonDeal`` is what Baton keeps of a deal (``crm_deals.deal``, as ``as_json``): enough to open the
handoff modal prefilled, so the DM's button needs no second CRM call within Slack's 3-second window.
``handoff_form`` is pure: the same deal gives the same form, whichever CRM it came from."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from accounts.names import NAME_MAX, clean_name
from accounts.tiers import BillingPeriod
from handoff.checklist import AMOUNT_MAX, CURRENCIES, SEATS_MAX, TEXT_MAX, HandoffForm

ACTIVITIES_SHOWN = 5  # the last few notes and activities are the communication history
DECISION_ROLES = ("decision", "決裁")  # a contact role naming the decision maker (Decision maker, 決裁者)


@dataclass(frozen=True)
class DealContact:
    name: str
    email: str | None = None
    role: str | None = None  # HubSpot: the association label; Salesforce: OpportunityContactRole.Role
    primary: bool = False


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    amount: Decimal | None = None  # quantity x price, as the CRM totals it
    billing_period: str | None = None  # monthly | annual | None (one-off)
    term_months: int | None = None


@dataclass(frozen=True)
class Activity:
    """A note, call, meeting or completed task on the deal."""

    kind: str  # note | call | meeting | task | email
    when: date | None
    text: str


@dataclass(frozen=True)
class WonDeal:
    crm: str  # hubspot | salesforce
    deal_id: str
    name: str
    account_name: str | None
    company_id: str | None
    amount: Decimal | None
    currency: str | None
    close_date: date | None
    renewal_date: date | None  # the term's end: the CRM's own field, else close date + term
    owner_email: str | None
    line_items: tuple[LineItem, ...] = ()
    contacts: tuple[DealContact, ...] = ()
    activities: tuple[Activity, ...] = ()
    url: str | None = None  # the deal in the CRM, for people

    def as_json(self) -> dict[str, Any]:
        return _plain(asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WonDeal:
        return cls(
            **{
                **data,
                "amount": decimal_of(data.get("amount")),
                "close_date": day_of(data.get("close_date")),
                "renewal_date": day_of(data.get("renewal_date")),
                "line_items": tuple(
                    LineItem(
                        **{
                            **li,
                            **{k: decimal_of(li.get(k)) for k in ("quantity", "unit_price", "amount")},
                        }
                    )
                    for li in data.get("line_items") or ()
                ),
                "contacts": tuple(DealContact(**c) for c in data.get("contacts") or ()),
                "activities": tuple(
                    Activity(**{**a, "when": day_of(a.get("when"))}) for a in data.get("activities") or ()
                ),
            }
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def decimal_of(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def day_of(value: Any, timezone: str | None = None) -> date | None:
    """``2026-11-30``, or the day of ``2026-11-30T00:00:00Z`` (HubSpot and Salesforce both). With the
    team's ``timezone``, an instant (a deal closed at 08:00 in Tokyo is 23:00 UTC the day before) is
    read as the team's day; midnight UTC is a date a person picked, and stays that date."""
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        if timezone and len(text) > 10:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if at.tzinfo is not None and at.astimezone(UTC).time() != time(0):
                return at.astimezone(ZoneInfo(timezone)).date()
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the 31st becomes the month's last day)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _money(d: Decimal) -> str:
    return f"{d.normalize():f}" if d == d.to_integral() else f"{d:.2f}"


def _plan_item(items: tuple[LineItem, ...]) -> LineItem | None:
    """The plan is the recurring line item worth most; without recurring ones, the largest."""
    if not items:
        return None
    recurring = [li for li in items if li.billing_period] or list(items)
    return max(recurring, key=lambda li: li.amount or Decimal(0))


def handoff_form(
    deal: WonDeal, *, handed_off_by: str | None = None, kinds: Mapping[str, str] | None = None
) -> HandoffForm:
    """The handoff modal's answers from a won deal: the account, the contract from the amount and line
    items, close date as contract start, the term's end as renewal, contacts with their roles as
    stakeholders, notes and last activities as communication history. What the deal does not say
    stays empty for the rep to answer; nothing is invented (a price in a currency the form does not
    take is left out rather than converted). ``kinds`` names each activity kind in the team's language
    (``note`` -> メモ); a kind it does not name is shown as the CRM names it."""
    plan = _plan_item(deal.line_items)
    price, currency, period = _price(deal, plan)
    seats = None
    if plan and plan.quantity is not None and plan.quantity == plan.quantity.to_integral():
        seats = int(plan.quantity) if 0 < plan.quantity <= SEATS_MAX else None
    stakeholders = "\n".join(
        " | ".join(p for p in (c.name.replace("|", "/"), c.role, c.email) if p)
        for c in deal.contacts
        if c.name
    )
    makers = [c.name for c in deal.contacts if c.role and any(r in c.role.lower() for r in DECISION_ROLES)]
    start = deal.close_date
    renewal = deal.renewal_date if deal.renewal_date and start and deal.renewal_date > start else None
    return HandoffForm(
        account_name=_short(clean_name(deal.account_name), NAME_MAX) if deal.account_name else None,
        plan=_short(plan.name, NAME_MAX) if plan and plan.name else None,
        seats=seats,
        price_amount=price,
        currency=currency,
        billing_period=str(period) if price is not None and period else None,
        contract_start=start,
        renewal_date=renewal,
        addons=_short(_addons(deal, plan), TEXT_MAX) or None,
        decision_maker=_short(", ".join(makers), TEXT_MAX) or None,
        stakeholders_external=_short(stakeholders, TEXT_MAX) or None,
        discussion=_short(_history(deal, kinds), TEXT_MAX) or None,
        handed_off_by=handed_off_by,
    )


def _price(deal: WonDeal, plan: LineItem | None) -> tuple[Decimal | None, str | None, str | None]:
    """The contract's price, currency and billing period. A monthly plan is priced per month from its
    recurring items (when each has an amount); otherwise the deal's amount is the annual price. A price
    out of the form's range, or in a currency it does not take, is left out."""
    period = plan.billing_period if plan else None
    recurring = [li for li in deal.line_items if li.billing_period == period] if period else []
    if period == BillingPeriod.MONTHLY and all(li.amount is not None for li in recurring):
        price: Decimal | None = sum((li.amount or Decimal(0) for li in recurring), Decimal(0))
    else:
        price = deal.amount
        period = BillingPeriod.ANNUAL if price is not None else period
    if price is not None and not (0 <= price < AMOUNT_MAX):
        price = None
    if price is not None:
        price = price.quantize(Decimal("0.01")) if price.as_tuple().exponent < -2 else price  # type: ignore[operator]
    currency = (deal.currency or "").upper() or None
    if currency not in CURRENCIES:
        price, currency = None, None
    return price, currency, period


def _addons(deal: WonDeal, plan: LineItem | None) -> str:
    """The line items besides the plan, one a line, with their quantity unless it is one."""
    others = [li for li in deal.line_items if li is not plan]
    return "\n".join(
        f"{li.name} × {_money(li.quantity)}" if li.quantity not in (None, Decimal(1)) else li.name
        for li in others
        if li.quantity is not None or li.name
    )


def _history(deal: WonDeal, kinds: Mapping[str, str] | None) -> str:
    """The deal's last few activities, one a line (whitespace collapsed), each kind named by ``kinds``."""
    return "\n".join(
        f"{a.when.isoformat() + ' ' if a.when else ''}[{(kinds or {}).get(a.kind, a.kind)}] "
        f"{' '.join(a.text.split())}"
        for a in deal.activities[:ACTIVITIES_SHOWN]
        if a.text.strip()
    )


def term_end(
    close: date | None, explicit: date | None, items: tuple[LineItem, ...], default_months: int
) -> date | None:
    """The renewal date: the CRM's own field, else the close date plus the plan's term (or the
    configured default)."""
    if explicit:
        return explicit
    if close is None:
        return None
    plan = _plan_item(items)
    return add_months(close, (plan.term_months if plan and plan.term_months else None) or default_months)
