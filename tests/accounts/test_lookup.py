"""Accounts are found by what people type: width, case and invisible characters do not matter."""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.lookup import find_account, similar_account_names
from accounts.names import clean_name, name_problems, normalize_name
from storage import Database
from storage.models import Account


def _add(db: Database, *names: str) -> None:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    with db.session() as s:
        for n in names:
            s.add(Account(name=clean_name(n), name_key=normalize_name(n), created_at=now, updated_at=now))


def test_an_account_is_found_whatever_the_width_case_or_invisible_characters(db: Database) -> None:
    _add(db, "Acme Corp", "Beta KK")
    with db.session() as s:
        acme = find_account(s, "Acme Corp")
        assert acme is not None and acme.name == "Acme Corp"
        assert find_account(s, "  ＡＣＭＥ   corp ") is acme
        assert find_account(s, "Acme\u200b Corp") is acme
        assert find_account(s, "Acme") is None


def test_close_names_answer_did_you_mean(db: Database) -> None:
    _add(db, "Acme Corp", "Acme Labs", "Beta KK")
    with db.session() as s:
        assert similar_account_names(s, "acme") == ["Acme Corp", "Acme Labs"]  # both contain it
        assert similar_account_names(s, "Acme Crop") == ["Acme Corp"]
        assert similar_account_names(s, "Zeta") == []


def test_a_name_too_long_once_normalized_is_refused_with_the_columns_limit() -> None:
    assert name_problems("Acme Corp") is None
    problem = name_problems("\ufdfa" * 12)  # NFKC makes each of these 18 characters
    assert problem is not None and problem[1]["max"] == 200
