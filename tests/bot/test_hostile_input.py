"""A submission with values the columns cannot hold gets inline errors on both databases (it was a
PostgreSQL-only 500) and stores nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Account, Handoff
from tests.bot.conftest import VALID, Baton
from tests.bot.test_handoff_flow import open_modal


def test_overlong_and_nul_values_get_inline_errors_and_nothing_is_stored(baton: Baton) -> None:
    view = open_modal(baton)
    resp = baton.submit(
        view,
        {
            **VALID,
            "account_name": "\ufdfa" * 12,  # 12 characters, 216 once normalized
            "why_bought": "pasted\x00text",
            "stakeholders_external": "Hanako | " + "CFO " * 60 + "| hanako@x.example",
        },
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"account_name", "why_bought", "stakeholders_external"}
    assert "200" in body["errors"]["account_name"] and "NUL" in body["errors"]["why_bought"]
    assert body["errors"]["stakeholders_external"].startswith("Line 1")
    with baton.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Handoff)) == 0
        assert s.scalar(select(func.count()).select_from(Account)) == 0
