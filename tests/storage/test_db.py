"""The engine's error messages: SQL yes, the people's data bound into it no."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from storage import Database
from storage.models import Account


def test_a_failed_statement_does_not_carry_its_parameters_into_the_error(db: Database) -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)

    def account() -> Account:
        return Account(
            name="Yamada Hanako",
            name_key="yamada hanako",
            csm_email="hanako@example.co.jp",
            created_at=now,
            updated_at=now,
        )

    with db.session() as s:
        s.add(account())
    with pytest.raises(IntegrityError) as err, db.session() as s:
        s.add(account())  # the same name_key again: a unique violation, logged by whoever catches it
    message = str(err.value)
    assert "INSERT INTO accounts" in message  # still says what failed
    assert "Yamada Hanako" not in message and "hanako@example.co.jp" not in message
