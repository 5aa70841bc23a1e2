from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from accounts.names import normalize_name
from handoff.checklist import (
    HandoffForm,
    Item,
    missing_items,
    parse_external_stakeholders,
    validate,
)


def valid_form(**overrides: object) -> HandoffForm:
    base = dict(
        account_name="Acme",
        problem="p",
        plan="Pro",
        seats=10,
        price_amount=Decimal(100),
        currency="USD",
        billing_period="monthly",
        contract_start=date(2026, 1, 1),
        renewal_date=date(2027, 1, 1),
        handed_off_by="U1",
    )
    return HandoffForm(**{**base, **overrides})


def codes(form: HandoffForm) -> dict[str, str]:
    return {e.field: e.code for e in validate(form)}


def test_a_complete_form_is_valid() -> None:
    assert validate(valid_form()) == []


def test_every_rule_reports_on_its_field() -> None:
    assert codes(valid_form(seats=0)) == {"seats": "seats_positive"}
    assert codes(valid_form(price_amount=Decimal("-0.01"))) == {"price_amount": "amount_not_negative"}
    assert codes(valid_form(price_amount=Decimal(0))) == {}  # free pilots are allowed
    assert codes(valid_form(renewal_date=date(2026, 1, 1))) == {"renewal_date": "renewal_after_start"}
    assert codes(valid_form(currency="GBP")) == {"currency": "unknown_currency"}
    assert codes(valid_form(problem="   ")) == {"problem": "required"}
    assert codes(valid_form(concerns="x" * 2001)) == {"concerns": "too_long"}


def test_all_missing_required_fields_are_reported_at_once() -> None:
    errors = codes(HandoffForm())
    assert set(errors) == {
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
    }


def test_external_stakeholders_parse_with_line_numbers() -> None:
    people, errors = parse_external_stakeholders(
        "Taro Yamada | CTO | taro@example.com\n\n山田 花子｜部長\nbob@example.com\nAmy | PM | amy@\nA|B|C|D\n"
        "Reyes, Dana | VP, Sales"
    )
    assert [(p.name, p.role, p.email) for p in people] == [
        ("Taro Yamada", "CTO", "taro@example.com"),
        ("山田 花子", "部長", None),
        ("Reyes, Dana", "VP, Sales", None),  # commas belong to names and roles
    ]
    assert [(e.code, e.params["line"]) for e in errors] == [
        ("stakeholder_no_name", 4),
        ("bad_email", 5),
        ("stakeholder_too_many_parts", 6),
    ]


def test_name_then_email_without_role() -> None:
    people, errors = parse_external_stakeholders("Ken | ken@example.com")
    assert errors == [] and (people[0].role, people[0].email) == (None, "ken@example.com")


def test_numbers_out_of_range_are_refused() -> None:
    assert codes(valid_form(seats=10**7)) == {"seats": "seats_too_many"}
    assert codes(valid_form(price_amount=Decimal(10) ** 14)) == {"price_amount": "amount_too_large"}
    assert codes(valid_form(price_amount=Decimal("12.345"))) == {"price_amount": "amount_decimals"}


def test_earlier_parse_problems_are_reported_with_the_rest() -> None:
    from handoff.checklist import FieldError

    errors = validate(valid_form(seats=None, plan=None), [FieldError("seats", "not_a_whole_number")])
    assert {e.field: e.code for e in errors} == {"seats": "not_a_whole_number", "plan": "required"}


def test_completeness_counts_twelve_items() -> None:
    h = SimpleNamespace(
        plan="Pro",
        seats=1,
        price_amount=Decimal(1),
        contract_start=date(2026, 1, 1),
        renewal_date=date(2027, 1, 1),
        stakeholders=[],
        meetings="weekly call",
        why_won=" ",
    )
    missing = missing_items(h)
    assert len(Item) == 12
    assert Item.CONTRACT not in missing and Item.TERM not in missing and Item.DISCUSSION not in missing
    assert Item.COMPETITORS in missing and Item.STAKEHOLDERS in missing
    assert len(missing) == 9


def test_names_are_matched_without_regard_to_case_width_or_spacing() -> None:
    assert normalize_name("  ＡＣＭＥ   Corp ") == normalize_name("acme corp") == "acme corp"
