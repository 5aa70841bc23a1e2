"""Values the modal lets through (or a forged submission sends) that the columns cannot hold are field
errors on both databases, never a PostgreSQL-only 500; invisible characters do not make a second account."""

from __future__ import annotations

import pytest

from accounts.lookup import find_account
from accounts.names import clean_name, normalize_name
from handoff import service
from handoff.checklist import validate
from handoff.service import Actor, Invalid
from settings import Rules
from storage import Database
from storage.models import Account
from tests.clocks import FakeClock
from tests.handoff.test_checklist import valid_form

RULES = Rules.load(None)
LIGATURE = "\ufdfa"  # one character, 18 after NFKC
EXPANDING = LIGATURE * 12  # 12 characters whose key is 216


def errors_of(**kw: object) -> dict[str, tuple[str, dict]]:
    return {e.field: (e.code, e.params) for e in validate(valid_form(**kw))}


@pytest.mark.parametrize(
    ("stakeholders", "code"),
    [
        ("Ann | " + "r" * 201 + " | ann@x.example", "stakeholder_too_long"),
        ("Ann | CEO | " + "a" * 5000 + "@x.example", "stakeholder_too_long"),
        ("A" * 201 + " | CEO", "stakeholder_too_long"),
        ("Ann\x00 | CEO", "stakeholder_nul_character"),
    ],
)
def test_a_stakeholder_part_the_column_cannot_hold_is_a_line_error(stakeholders: str, code: str) -> None:
    assert errors_of(stakeholders_external=stakeholders)["stakeholders_external"][0] == code
    assert errors_of(stakeholders_external=stakeholders)["stakeholders_external"][1]["line"] == 1


def test_a_name_whose_normalization_outgrows_the_key_column_is_too_long() -> None:
    assert len(EXPANDING) == 12 and len(normalize_name(EXPANDING)) == 216
    assert errors_of(account_name=EXPANDING)["account_name"] == ("too_long", {"max": 200})


def test_nul_bytes_and_overlong_one_line_answers_are_field_errors() -> None:
    got = errors_of(why_bought="a\x00b", plan="P" * 201, account_name="Ac\x00me", csm_user_id="U" * 40)
    assert got["why_bought"][0] == "nul_character" and got["account_name"][0] == "nul_character"
    assert got["plan"] == ("too_long", {"max": 200}) and got["csm_user_id"] == ("too_long", {"max": 32})
    assert errors_of(stakeholder_users=["U1", "U" * 40])["stakeholder_users"][0] == "too_long"


@pytest.mark.parametrize(
    "overrides",
    [
        {"account_name": EXPANDING},
        {"stakeholders_external": "Ann | " + "r" * 201},
        {"stakeholders_external": "Ann | CEO | " + "a" * 5000 + "@x.example"},
        {"why_bought": "a\x00b"},
        {"plan": "P" * 201},
    ],
)
def test_the_service_refuses_them_on_both_databases_and_writes_nothing(db: Database, overrides) -> None:
    with pytest.raises(Invalid), db.session() as s:
        service.create(s, form=valid_form(**overrides), actor=Actor("UREP"), clock=FakeClock(), rules=RULES)
    with db.session() as s:
        assert s.query(Account).count() == 0


def test_zero_width_and_bidi_characters_do_not_make_a_look_alike_account(db: Database) -> None:
    assert clean_name("Zw\u200bCorp\u202e") == "ZwCorp" and normalize_name("Zw\u200bCorp") == "zwcorp"
    with db.session() as s:
        service.create(
            s,
            form=valid_form(account_name="Zw\u200bCorp"),
            actor=Actor("UREP"),
            clock=FakeClock(),
            rules=RULES,
        )
    with db.session() as s:
        (account,) = s.query(Account).all()
        assert account.name == "ZwCorp"
        assert find_account(s, "ZwCorp") is account
        assert find_account(s, "Zw\u2060Corp") is account
