"""The handoff checklist: what IS/FS must pass to CS, how it is validated and how complete it is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from accounts.names import name_problems
from accounts.tiers import BillingPeriod, Tier
from storage.limits import text_problem
from storage.models import Handoff, Stakeholder

CURRENCIES = ("JPY", "USD", "EUR")
TEXT_MAX = 2000  # per free-text answer; keeps every rendered field inside Slack's 3000-char section limit


@dataclass(frozen=True)
class ExternalStakeholder:
    name: str
    role: str | None = None
    email: str | None = None


@dataclass
class HandoffForm:
    """What a person submitted, already typed; ``None`` means left empty."""

    account_name: str | None = None
    why_bought: str | None = None
    problem: str | None = None
    success_criteria: str | None = None
    plan: str | None = None
    seats: int | None = None
    price_amount: Decimal | None = None
    currency: str | None = None
    billing_period: str | None = None
    contract_start: date | None = None
    renewal_date: date | None = None
    addons: str | None = None
    decision_process: str | None = None
    decision_maker: str | None = None
    competitors: str | None = None
    why_won: str | None = None
    stakeholder_users: list[str] = field(default_factory=list)
    stakeholders_external: str | None = None
    discussion: str | None = None
    meetings: str | None = None
    concerns: str | None = None
    open_questions: str | None = None
    handed_off_by: str | None = None
    csm_user_id: str | None = None
    touch_tier: str | None = None


REQUIRED = (
    "account_name",
    "problem",
    "plan",
    "seats",
    "price_amount",
    "currency",
    "billing_period",
    "contract_start",
    "renewal_date",
    "handed_off_by",
)


@dataclass(frozen=True)
class FieldError:
    """A problem with one form field. ``code`` is a message key; the UI localizes it with ``params``."""

    field: str
    code: str
    params: dict[str, object] = field(default_factory=dict)


_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# Only "|" (or a tab, or the full-width ｜) separates parts: names and roles contain commas ("Yamada, Taro").
_SPLIT = re.compile(r"\s*[|\t｜]\s*")
SEATS_MAX = 1_000_000
AMOUNT_MAX = Decimal(10) ** 12


def parse_external_stakeholders(text: str | None) -> tuple[list[ExternalStakeholder], list[FieldError]]:
    """One stakeholder a line, ``Name | Role | email`` (a tab works too); errors name the line."""
    people: list[ExternalStakeholder] = []
    errors: list[FieldError] = []
    for lineno, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in _SPLIT.split(line)]
        if len(parts) > 3:
            errors.append(FieldError("stakeholders_external", "stakeholder_too_many_parts", {"line": lineno}))
            continue
        name, role, email = [*parts, None, None][:3]
        if email is None and role and "@" in role:
            role, email = None, role
        if not name or "@" in name:
            errors.append(FieldError("stakeholders_external", "stakeholder_no_name", {"line": lineno}))
            continue
        if email and not _EMAIL.match(email):
            errors.append(FieldError("stakeholders_external", "bad_email", {"line": lineno, "email": email}))
            continue
        unstorable = [
            problem
            for value, attr in (
                (name, Stakeholder.name),
                (role, Stakeholder.role),
                (email, Stakeholder.email),
            )
            if value and (problem := text_problem(value, attr))
        ]
        if unstorable:
            code, params = unstorable[0]
            errors.append(
                FieldError("stakeholders_external", f"stakeholder_{code}", {"line": lineno, **params})
            )
            continue
        people.append(ExternalStakeholder(name=name, role=(role or None), email=(email or None)))
    return people, errors


def validate(form: HandoffForm, known: list[FieldError] | None = None) -> list[FieldError]:
    """Every problem at once, so the modal can mark all wrong fields in one round trip. ``known`` are
    problems found earlier (a number that did not parse); those fields are not checked again."""
    errors: list[FieldError] = list(known or [])
    skip = {e.field for e in errors}
    for name in REQUIRED:
        value = getattr(form, name)
        if name in skip:
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(FieldError(name, "required"))
    if form.account_name and "account_name" not in skip and (problem := name_problems(form.account_name)):
        errors.append(FieldError("account_name", problem[0], problem[1]))
    errors.extend(_column_problems(form, skip))
    if form.seats is not None and form.seats <= 0:
        errors.append(FieldError("seats", "seats_positive"))
    elif form.seats is not None and form.seats > SEATS_MAX:
        errors.append(FieldError("seats", "seats_too_many", {"max": f"{SEATS_MAX:,}"}))
    if form.price_amount is not None:
        if form.price_amount < 0:
            errors.append(FieldError("price_amount", "amount_not_negative"))
        elif form.price_amount >= AMOUNT_MAX:
            errors.append(FieldError("price_amount", "amount_too_large"))
        elif form.price_amount.as_tuple().exponent < -2:  # type: ignore[operator]
            errors.append(FieldError("price_amount", "amount_decimals"))
    if form.currency is not None and form.currency not in CURRENCIES:
        errors.append(FieldError("currency", "unknown_currency"))
    if form.billing_period is not None and form.billing_period not in set(BillingPeriod):
        errors.append(FieldError("billing_period", "unknown_billing_period"))
    if form.touch_tier is not None and form.touch_tier not in set(Tier):
        errors.append(FieldError("touch_tier", "unknown_tier"))
    if form.contract_start and form.renewal_date and form.renewal_date <= form.contract_start:
        errors.append(FieldError("renewal_date", "renewal_after_start"))
    for name in TEXT_FIELDS:
        value = getattr(form, name)
        if value and len(value) > TEXT_MAX and not any(e.field == name for e in errors):
            errors.append(FieldError(name, "too_long", {"max": TEXT_MAX}))
    errors.extend(parse_external_stakeholders(form.stakeholders_external)[1])
    return errors


def _column_problems(form: HandoffForm, skip: set[str]) -> list[FieldError]:
    """Text the columns cannot hold (NUL, too long for a String(n)), field by field: the modal limits
    lengths, but a forged or replayed submission does not have to respect them."""
    errors: list[FieldError] = []
    for name, value in vars(form).items():
        if name in skip or name == "account_name":
            continue
        attr = getattr(Handoff, name, None)
        values = value if isinstance(value, list) else [value]
        if name == "stakeholder_users":
            attr = Stakeholder.slack_user_id
        for v in values:
            if isinstance(v, str) and (problem := text_problem(v.strip(), attr)):
                errors.append(FieldError(name, problem[0], problem[1]))
                break
    return errors


TEXT_FIELDS = (
    "why_bought",
    "problem",
    "success_criteria",
    "addons",
    "decision_process",
    "decision_maker",
    "competitors",
    "why_won",
    "stakeholders_external",
    "discussion",
    "meetings",
    "concerns",
    "open_questions",
)


class Item(StrEnum):
    """The twelve checklist items counted for completeness ("9/12 items")."""

    WHY_BOUGHT = "why_bought"
    PROBLEM = "problem"
    SUCCESS_CRITERIA = "success_criteria"
    CONTRACT = "contract"
    TERM = "term"
    ADDONS = "addons"
    DECISION_PROCESS = "decision_process"
    DECISION_MAKER = "decision_maker"
    COMPETITORS = "competitors"
    STAKEHOLDERS = "stakeholders"
    DISCUSSION = "discussion"
    CONCERNS = "concerns"


def _filled(*values: object) -> bool:
    return any(v is not None and (not isinstance(v, str) or v.strip()) for v in values)


def missing_items(h: object) -> list[Item]:
    """Items not yet answered on a stored handoff (anything with the Handoff model's attributes)."""
    g = lambda name: getattr(h, name, None)  # noqa: E731
    done = {
        Item.WHY_BOUGHT: _filled(g("why_bought")),
        Item.PROBLEM: _filled(g("problem")),
        Item.SUCCESS_CRITERIA: _filled(g("success_criteria")),
        Item.CONTRACT: _filled(g("plan")) and g("seats") is not None and g("price_amount") is not None,
        Item.TERM: g("contract_start") is not None and g("renewal_date") is not None,
        Item.ADDONS: _filled(g("addons")),
        Item.DECISION_PROCESS: _filled(g("decision_process")),
        Item.DECISION_MAKER: _filled(g("decision_maker")),
        Item.COMPETITORS: _filled(g("competitors"), g("why_won")),
        Item.STAKEHOLDERS: bool(g("stakeholders")),
        Item.DISCUSSION: _filled(g("discussion"), g("meetings")),
        Item.CONCERNS: _filled(g("concerns"), g("open_questions")),
    }
    return [item for item in Item if not done[item]]
