"""Baton talking to the fake Slack Web API (a real HTTP server: the real slack_sdk client calls it);
requests into Baton are signed the way Slack signs them.

By default they are dispatched in-process, as bolt-python's own tests do, but through the whole WSGI
app (``bot.server.create_wsgi``): the body cap, Bolt's signature check, the workspace guard, the error
handler, ack and the listener executor all run, only the socket is skipped. Tests marked
``@pytest.mark.served`` get the same ``Baton`` over the production server (waitress on loopback)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.app import create_app
from bot.server import StartResponse, create_wsgi
from settings import Settings
from storage import Database
from tests.clocks import FakeClock
from tests.executors import TrackingExecutor
from tests.fakeslack import FakeSlack
from tests.servers import serving

SECRET = "test-signing-secret"
CS_USER = "UCS0001"
CS_GROUP_MEMBER = "UCS0002"
REP = "UREP0001"
OTHER = "UOTHER01"
HANDOFF_CHANNEL = "CHANDOFF1"
ALERT_CHANNEL = "CALERTS01"
IN_PROCESS_URL = "http://baton.test"
WSGI = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "served: the baton fixture serves the app with waitress on loopback")


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def as_served(wsgi: WSGI) -> WSGI:
    """What the server adds around the app in-process: an exception the app lets out is a logged 500,
    as waitress answers it, not an exception in the test's ``post``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return list(wsgi(environ, start_response))
        except Exception:
            logging.getLogger("waitress").exception("Exception while serving %s", environ.get("PATH_INFO"))
            body = b"Internal Server Error"
            start_response("500 Internal Server Error", [("Content-Length", str(len(body)))], None)
            return [body]

    return app


@contextmanager
def transport(wsgi: WSGI, *, served: bool) -> Iterator[tuple[str, httpx.Client]]:
    """A base URL and an HTTP client that reach ``wsgi``: over loopback through waitress when
    ``served``, else by calling it in this process (no socket, no server threads to stop)."""
    if served:
        with serving(wsgi) as url, httpx.Client(timeout=10) as http:
            yield url, http
        return
    with httpx.Client(transport=httpx.WSGITransport(app=as_served(wsgi)), timeout=10) as http:
        yield IN_PROCESS_URL, http


@dataclass
class Baton:
    url: str
    slack: FakeSlack
    db: Database
    clock: FakeClock
    http: httpx.Client
    listeners: TrackingExecutor

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every listener the app started has returned (their Slack calls and writes done)."""
        if not self.listeners.wait_idle(timeout):
            raise AssertionError(f"the app's listeners were still running after {timeout} s")

    def post(self, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(self.url + "/slack/events", content=body, headers=headers or sign(body))

    def command_body(self, text: str, user: str = REP, channel: str = "CSALES01") -> str:
        """A slash command's body; posting it again is what a retry or a replay sends."""
        return urlencode(
            {
                "command": "/handoff",
                "text": text,
                "user_id": user,
                "user_name": user.lower(),
                "channel_id": channel,
                "team_id": "T1",
                "trigger_id": f"trig.{time.monotonic_ns()}",
                "response_url": self.slack.response_url(),
                "api_app_id": "A1",
                "token": "legacy",
            }
        )

    def command(self, text: str, user: str = REP, channel: str = "CSALES01") -> httpx.Response:
        return self.post(self.command_body(text, user, channel))

    @staticmethod
    def interaction_body(payload: dict[str, Any]) -> str:
        payload = {"team": {"id": "T1"}, "api_app_id": "A1", "token": "legacy", **payload}
        return urlencode({"payload": json.dumps(payload)})

    def interact(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post(self.interaction_body(payload))

    def click(
        self,
        action: dict[str, Any],
        user: str,
        message: dict[str, Any] | None = None,
        channel: str = HANDOFF_CHANNEL,
    ) -> httpx.Response:
        return self.interact(
            {
                "type": "block_actions",
                "user": {"id": user},
                "trigger_id": f"trig.{time.monotonic_ns()}",
                "response_url": self.slack.response_url(),
                "channel": {"id": channel},
                "container": {"type": "message", "channel_id": channel},
                "message": message or {"ts": "1.0"},
                "actions": [action],
            }
        )

    def submission_body(self, view: dict[str, Any], values: dict[str, Any], user: str = REP) -> str:
        """A modal submission's body. Slack gives each opened modal its own view id: so does this."""
        state = {"values": fill_state(view, values)}
        return self.interaction_body(
            {
                "type": "view_submission",
                "user": {"id": user},
                "trigger_id": f"trig.{time.monotonic_ns()}",
                "view": {**view, "id": view.get("id") or f"V{time.monotonic_ns()}", "state": state},
            }
        )

    def submit(self, view: dict[str, Any], values: dict[str, Any], user: str = REP) -> httpx.Response:
        return self.post(self.submission_body(view, values, user))


def card_action(post: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The action payload Slack sends when someone clicks ``action_id`` on a posted message."""
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    el = next(e for e in actions["elements"] if e["action_id"] == action_id)
    return {
        "action_id": action_id,
        "block_id": actions["block_id"],
        **({"value": el["value"]} if "value" in el else {}),
    }


def fill_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``view.state.values`` as Slack builds it: every input block, empty ones included; values taken
    from the view's initial values, then overridden by ``values`` (None clears a field)."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        el = block["element"]
        aid, kind = el["action_id"], el["type"]
        value = values[block["block_id"]] if block["block_id"] in values else _initial(el)
        if kind in ("plain_text_input", "number_input"):
            entry = {"type": kind, "value": None if value is None else str(value)}
        elif kind == "static_select":
            entry = {"type": kind, "selected_option": None if value is None else {"value": value}}
        elif kind == "datepicker":
            entry = {"type": kind, "selected_date": None if value is None else str(value)}
        elif kind == "users_select":
            entry = {"type": kind, "selected_user": value}
        elif kind == "multi_users_select":
            entry = {"type": kind, "selected_users": value or []}
        else:
            raise AssertionError(kind)
        state[block["block_id"]] = {aid: entry}
    return state


def _initial(el: dict[str, Any]) -> Any:
    for key in ("initial_value", "initial_date", "initial_user", "initial_users"):
        if key in el:
            return el[key]
    if "initial_option" in el:
        return el["initial_option"]["value"]
    return None


VALID = {
    "why_bought": "Their support team drowns in spreadsheets.",
    "problem": "Cut first-response time in half.",
    "success_criteria": "FRT under 2h by March.",
    "plan": "Enterprise",
    "seats": 120,
    "price_amount": "800000",
    "currency": "JPY",
    "billing_period": "monthly",
    "contract_start": "2026-12-01",
    "renewal_date": "2027-11-30",
}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.usergroups["SCS00001"] = [CS_GROUP_MEMBER]
    yield fake
    fake.stop()
    assert not fake.problems, "\n".join(fake.problems)


@pytest.fixture(scope="session")
def _defaults() -> Settings:
    """The settings an empty environment gives, read once: parsing the rules file per test cost more
    than many of the tests (Settings and Rules are frozen, so sharing them is safe)."""
    return Settings.from_env({})


@pytest.fixture
def settings(slack: FakeSlack, _defaults: Settings) -> Settings:
    return replace(
        _defaults,
        slack_bot_token=slack.token,
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        handoff_channel=HANDOFF_CHANNEL,
        alert_channel=ALERT_CHANNEL,
        cs_users=(CS_USER, "SCS00001"),
    )


@contextmanager
def running(db: Database, slack: FakeSlack, settings: Settings, *, served: bool = False) -> Iterator[Baton]:
    """One Baton app on ``db``; several may share a database (two instances)."""
    clock = FakeClock()
    client = WebClient(token=slack.token, base_url=slack.base_url)
    listeners = TrackingExecutor()
    app = create_app(settings, db, clock=clock, client=client, listener_executor=listeners)
    try:
        with transport(create_wsgi(app, db), served=served) as (url, http):
            baton = Baton(url, slack, db, clock, http, listeners)
            yield baton
            baton.wait_idle()  # let listeners still running after their ack finish before Slack goes away
    finally:
        listeners.shutdown(wait=True)


@pytest.fixture
def baton(
    request: pytest.FixtureRequest, db: Database, slack: FakeSlack, settings: Settings
) -> Iterator[Baton]:
    """In-process signed dispatch; over waitress for tests marked ``served``, or for every test when
    BATON_TEST_SERVED=1 (to check that dispatching in-process hides nothing the socket would show)."""
    served = (
        request.node.get_closest_marker("served") is not None or os.environ.get("BATON_TEST_SERVED") == "1"
    )
    with running(db, slack, settings, served=served) as baton:
        yield baton
