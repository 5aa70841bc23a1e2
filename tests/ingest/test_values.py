"""Cell values as people type them: amounts with ¥, 円, $ and full-width digits; dates with slashes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ingest.values import header_name, parse_amount, parse_count, parse_date, parse_number


@pytest.mark.parametrize(
    ("typed", "amount", "symbol"),
    [
        ("120000", Decimal("120000"), None),
        ("¥50,000", Decimal("50000"), "¥"),
        ("￥50,000", Decimal("50000"), "¥"),  # full-width yen sign
        ("\\50,000", Decimal("50000"), "\\"),  # ¥ as Excel in Japan writes it, read as CP932
        ("50,000円", Decimal("50000"), "円"),
        ("¥50,000円", Decimal("50000"), "¥"),
        ("$1,200.50", Decimal("1200.50"), "$"),
        ("５０，０００", Decimal("50000"), None),
        ("￥５０，０００", Decimal("50000"), "¥"),  # typed with the IME on: every character full-width
        ("５０，０００円", Decimal("50000"), "円"),
        ("＄１，２００．５０", Decimal("1200.50"), "$"),
        (" 1,234,567.8 ", Decimal("1234567.8"), None),
        ("-3.5", Decimal("-3.5"), None),
    ],
)
def test_amounts_as_typed(typed: str, amount: Decimal, symbol: str | None) -> None:
    assert parse_amount(typed) == (amount, symbol)


@pytest.mark.parametrize("typed", ["", "abc", "1,2,3", "12,34", "$50円", "50 000", "1.2.3", "nan", "¥"])
def test_what_is_not_an_amount(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(typed)


def test_counts_and_numbers() -> None:
    assert parse_count("1,200") == 1200 and parse_count("５０") == 50
    assert parse_number("¥12,000") == 12000.0
    for bad in ("1.5", "¥10"):
        with pytest.raises(ValueError):
            parse_count(bad)


@pytest.mark.parametrize(
    "typed",
    ["2026-11-30", "2026/11/30", "２０２６／１１／３０", "2026年11月30日", "2026/11/30 0:00", "20261130"],
)
def test_dates_as_typed(typed: str) -> None:
    assert parse_date(typed) == date(2026, 11, 30)


def test_dates_without_leading_zeros_and_impossible_days() -> None:
    assert parse_date("2026/1/5") == date(2026, 1, 5)
    for bad in ("2026/02/30", "30/11/2026", "11/30/2026", "tomorrow"):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_header_names_from_excel() -> None:
    assert header_name("\ufeffAccount ID ") == "account_id"
    assert header_name("ＭＲＲ") == "mrr" and header_name("renewal-date") == "renewal_date"
