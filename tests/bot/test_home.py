from __future__ import annotations

import json
import time

from tests.bot.conftest import CS_USER, Baton, sign
from tests.bot.test_handoff_flow import create_handoff


def test_app_home_lists_the_viewers_handoffs(baton: Baton) -> None:
    create_handoff(baton)
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": "Ev1",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": CS_USER, "channel": "D1", "tab": "home"},
        }
    )
    headers = {**sign(body), "Content-Type": "application/json"}
    assert baton.post(body, headers).status_code == 200
    publish = baton.slack.wait_for("views.publish")[0].args
    assert publish["user_id"] == CS_USER and publish["view"]["type"] == "home"
    assert "Acme Corp" in str(publish["view"]["blocks"]) and "/handoff list" in str(publish["view"]["blocks"])
