from __future__ import annotations

import json
import time
from datetime import date

from sqlalchemy import select

from alerts.service import State
from handoff import service
from handoff.service import Actor
from storage.models import Alert, Handoff
from tests.bot.conftest import CS_USER, Baton, sign
from tests.bot.test_handoff_flow import create_handoff


def _open_home(baton: Baton, user: str) -> dict:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
        }
    )
    n = len(baton.slack.of("views.publish"))
    assert baton.post(body, {**sign(body), "Content-Type": "application/json"}).status_code == 200
    return baton.slack.wait_for("views.publish", n + 1)[-1].args


def test_app_home_shows_the_csms_accounts_next_touch_alerts_and_handoffs(baton: Baton) -> None:
    create_handoff(baton)
    publish = _open_home(baton, CS_USER)
    assert publish["user_id"] == CS_USER and publish["view"]["type"] == "home"
    blocks = str(publish["view"]["blocks"])
    assert "No accounts have you as their CSM yet." in blocks and "Acme Corp" in blocks
    assert "/handoff list" in blocks
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        service.assign(
            s, handoff_id=h.id, csm_user_id=CS_USER, actor=Actor(CS_USER, is_cs=True), clock=baton.clock
        )
        s.add(
            Alert(
                account_id=h.account_id,
                kind="churn_risk",
                state=State.OPEN,
                severity="high",
                score=30,
                reasons=[{"code": "inactive", "params": {"days": 20}}],
                as_of=date(2026, 11, 22),
                raised_at=baton.clock(),
                updated_at=baton.clock(),
                permalink="https://example.slack.com/archives/CALERTS01/p1700000099000100",
            )
        )
    baton.wait_idle()
    blocks = str(_open_home(baton, CS_USER)["view"]["blocks"])
    assert "⚪ <https://example.slack.com/archives/CHANDOFF1/p" in blocks  # the account links to its card
    assert "|Acme Corp> · " in blocks and "next: kickoff by" in blocks  # high touch: kickoff within a week
    assert "<https://example.slack.com/archives/CALERTS01/p1700000099000100|Churn risk: Acme Corp>" in blocks
    assert "· Open · No activity for 20 days" in blocks


def test_an_account_from_the_crm_shows_on_the_home_tab_of_the_csm_its_csm_email_names(
    baton: Baton,
) -> None:
    from tests.storage.test_directory import crm_accounts

    crm_accounts(
        baton.db, ("SF-1", "Mirai Logistics", "Hana@Example.com"), ("SF-2", "Other KK", "x@example.com")
    )
    baton.slack.emails["hana@example.com"] = "UHANA01"  # her Slack profile email (users:read.email)
    blocks = str(_open_home(baton, "UHANA01")["view"]["blocks"])
    assert "Mirai Logistics" in blocks and "Other KK" not in blocks
    assert baton.slack.of("users.lookupByEmail") == []  # the users.info call the locale needed sufficed
