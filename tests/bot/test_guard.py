"""What reaches Bolt: bodies Slack could have sent (at most 1 MiB), from Baton's own workspace; and what a
refused request leaves in the logs (never its body)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient

from bot.app import create_app
from bot.server import MAX_SLACK_BODY, create_wsgi
from settings import Settings
from storage import Database
from tests.bot.conftest import REP, Baton, sign
from tests.fakeslack import FakeSlack
from tests.servers import CountingStream


def _call(wsgi: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    seen: list[str] = []
    body = b"".join(wsgi(environ, lambda status, headers: seen.append(status)))
    return seen[0], body


@pytest.fixture
def events(db: Database, slack: FakeSlack, settings: Settings) -> Any:
    """The WSGI app itself, to call with bodies no HTTP client would send."""
    app = create_app(settings, db, client=WebClient(token=slack.token, base_url=slack.base_url))
    return create_wsgi(app, db)


def test_a_body_over_1_mib_is_refused_with_413_without_being_read(events: Any) -> None:
    stream = CountingStream(200 * 1024 * 1024)
    status, body = _call(
        events,
        {
            "PATH_INFO": "/slack/events",
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(stream.left),
            "wsgi.input": stream,
        },
    )
    assert status.startswith("413") and b"1 MiB" in body
    assert stream.read_bytes == 0


def test_a_body_without_a_length_is_read_only_to_the_cap(events: Any) -> None:
    stream = CountingStream(50 * 1024 * 1024)  # chunked: the server ends the stream, no Content-Length
    status, _ = _call(
        events,
        {
            "PATH_INFO": "/slack/events",
            "REQUEST_METHOD": "POST",
            "wsgi.input": stream,
            "wsgi.input_terminated": True,
        },
    )
    assert status.startswith("413")
    assert stream.read_bytes == MAX_SLACK_BODY + 1


@pytest.mark.served
def test_over_http_a_big_unsigned_body_is_413_and_a_normal_one_still_works(baton: Baton) -> None:
    big = "payload=" + "x" * (MAX_SLACK_BODY + 10)
    assert baton.post(big, sign(big)).status_code == 413
    assert baton.command("help").status_code == 200


def test_a_failed_signature_logs_no_body(baton: Baton, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slack_bolt.RequestVerification")
    body = urlencode({"command": "/handoff", "text": "MARKER-customer-secret", "team_id": "T1"})
    assert baton.post(body, sign(body, secret="wrong")).status_code == 401
    assert "Invalid request signature" in caplog.text  # the refusal is logged
    assert "MARKER-customer-secret" not in caplog.text  # its body is not


def test_a_signed_request_naming_another_workspace_is_refused(baton: Baton) -> None:
    body = urlencode(
        {
            "command": "/handoff",
            "text": "Acme",
            "user_id": REP,
            "channel_id": "CSALES01",
            "team_id": "TOTHER99",
            "trigger_id": "trig.x",
            "response_url": baton.slack.response_url(),
            "api_app_id": "A1",
        }
    )
    assert baton.post(body).status_code == 403
    baton.wait_idle()
    assert not baton.slack.of("views.open")  # the modal never opened
    assert baton.command("Acme").status_code == 200  # Baton's own workspace still works
    baton.slack.wait_for("views.open")


def test_another_workspace_in_the_same_enterprise_grid_org_is_accepted(baton: Baton) -> None:
    baton.slack.auth = {"team_id": "T1", "enterprise_id": "E1"}  # asked at the first request
    payload = {
        "type": "block_actions",
        "team": {"id": "T2", "enterprise_id": "E1"},
        "enterprise": {"id": "E1"},
        "user": {"id": REP},
        "trigger_id": "trig.y",
        "actions": [{"action_id": "nobody_listens", "value": "1"}],
        "api_app_id": "A1",
    }
    assert (
        baton.post(urlencode({"payload": json.dumps(payload)})).status_code == 404
    )  # past the check: no listener
    other = {**payload, "team": {"id": "T2", "enterprise_id": "E2"}, "enterprise": {"id": "E2"}}
    assert baton.post(urlencode({"payload": json.dumps(other)})).status_code == 403
