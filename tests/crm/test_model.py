"""WonDeal to the handoff form: what the deal says is filled in, what it does not stays empty."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from crm.model import Activity, DealContact, LineItem, WonDeal, add_months, handoff_form, term_end
from handoff.checklist import parse_external_stakeholders, validate


def deal(**kw: object) -> WonDeal:
    base: dict[str, object] = {
        "crm": "hubspot",
        "deal_id": "42",
        "name": "Acme - Pro",
        "account_name": "Acme\u200b Corp",
        "company_id": "9",
        "amount": Decimal("1440000"),
        "currency": "JPY",
        "close_date": date(2026, 11, 28),
        "renewal_date": date(2027, 11, 28),
        "owner_email": "rep@example.com",
        "line_items": (
            LineItem("SSO add-on", Decimal(1), Decimal(20000), Decimal(20000), "monthly", 12),
            LineItem("Pro plan", Decimal(50), Decimal(2000), Decimal(100000), "monthly", 12),
            LineItem("Onboarding", Decimal(1), Decimal(300000), Decimal(300000), None),
        ),
        "contacts": (
            DealContact("Taro Yamada", "yamada@acme.example", "Decision maker", True),
            DealContact("Hanako | Sato", None, "PM"),
        ),
        "activities": (
            Activity("note", date(2026, 11, 20), "Wants SSO\nby January"),
            Activity("meeting", None, "Demo"),
        ),
    }
    base.update(kw)
    return WonDeal(**base)  # type: ignore[arg-type]


def test_a_japanese_role_names_the_decision_maker_too() -> None:
    people = (DealContact("小林 陽翔", None, "決裁者"), DealContact("石川 結衣", None, "推進担当"))
    assert handoff_form(deal(contacts=people)).decision_maker == "小林 陽翔"


def test_the_form_is_prefilled_from_the_deal() -> None:
    form = handoff_form(deal(), handed_off_by="U1")
    assert form.account_name == "Acme Corp"  # the invisible character is gone, as everywhere
    assert (form.plan, form.seats) == ("Pro plan", 50)  # the recurring line item worth most
    assert (form.price_amount, form.currency, form.billing_period) == (Decimal(120000), "JPY", "monthly")
    assert (form.contract_start, form.renewal_date) == (date(2026, 11, 28), date(2027, 11, 28))
    assert form.addons == "SSO add-on\nOnboarding"
    assert form.decision_maker == "Taro Yamada"
    assert form.discussion == "2026-11-20 [note] Wants SSO by January\n[meeting] Demo"
    people, problems = parse_external_stakeholders(form.stakeholders_external)
    assert problems == []
    assert [(p.name, p.role, p.email) for p in people] == [
        ("Taro Yamada", "Decision maker", "yamada@acme.example"),
        ("Hanako / Sato", "PM", None),  # a "|" in a name would split the line
    ]
    # what a deal cannot say is left for the rep: only those are missing
    assert {e.field for e in validate(form)} == {"problem"}


def test_an_annual_deal_uses_the_deal_amount() -> None:
    items = (LineItem("Enterprise", Decimal(200), None, Decimal(5_000_000), "annual", 24),)
    form = handoff_form(deal(line_items=items, amount=Decimal("5000000.00")))
    assert (form.price_amount, form.billing_period, form.seats) == (Decimal("5000000.00"), "annual", 200)


def test_a_currency_the_form_does_not_take_leaves_the_price_empty_rather_than_converting() -> None:
    form = handoff_form(deal(currency="GBP", line_items=()))
    assert (form.price_amount, form.currency, form.billing_period) == (None, None, None)


def test_a_renewal_not_after_the_start_and_fractional_seats_are_left_out() -> None:
    items = (LineItem("Usage", Decimal("2.5"), None, Decimal(100), "monthly"),)
    form = handoff_form(deal(renewal_date=date(2026, 11, 1), line_items=items))
    assert (form.renewal_date, form.seats) == (None, None)
    assert form.plan == "Usage"


def test_a_deal_with_nothing_but_a_name_gives_an_almost_empty_form() -> None:
    bare = WonDeal("salesforce", "006", "x", None, None, None, None, None, None, None)
    form = handoff_form(bare)
    assert form.account_name is None and form.plan is None and form.discussion is None


def test_a_won_deal_survives_its_json_round_trip() -> None:
    d = deal()
    assert WonDeal.from_json(d.as_json()) == d


def test_the_term_end_comes_from_the_crm_then_the_plan_then_the_default() -> None:
    close = date(2026, 1, 31)
    items = (LineItem("P", Decimal(1), None, Decimal(1), "monthly", 6),)
    assert term_end(close, date(2026, 12, 31), items, 12) == date(2026, 12, 31)
    assert term_end(close, None, items, 12) == date(2026, 7, 31)
    assert term_end(close, None, (), 12) == date(2027, 1, 31)
    assert term_end(None, None, items, 12) is None
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2027, 12, 15), 2) == date(2028, 2, 15)


def test_a_close_date_is_the_teams_day() -> None:
    from datetime import date

    from crm.model import day_of

    assert day_of("2026-11-29T23:30:00Z", "Asia/Tokyo") == date(2026, 11, 30)  # 08:30 in Tokyo
    assert day_of("2026-11-29T15:00:00Z", "Asia/Tokyo") == date(2026, 11, 30)  # Tokyo's midnight
    assert day_of("2026-11-30T00:00:00Z", "Asia/Tokyo") == date(2026, 11, 30)  # a picked date stays
    assert day_of("2026-11-30T00:00:00Z", "America/Los_Angeles") == date(2026, 11, 30)
    assert day_of("2026-11-29T23:30:00Z") == date(2026, 11, 29)  # no timezone: the date as written
    assert day_of("2026-11-30") == date(2026, 11, 30) and day_of("soon", "Asia/Tokyo") is None


def test_the_communication_history_names_activities_in_the_teams_words() -> None:
    from bot.i18n import translator
    from bot.views.crm import activity_kinds
    from crm.model import Activity

    acts = (Activity("note", date(2026, 11, 29), "契約締結"), Activity("meeting", None, "最終提案"))
    form = handoff_form(deal(activities=acts), kinds=activity_kinds(translator("ja")))
    assert form.discussion == "2026-11-29 [メモ] 契約締結\n[打ち合わせ] 最終提案"
    assert "[note]" in (handoff_form(deal(activities=acts)).discussion or "")  # no words: the CRM's
