"""Socket Mode: Baton connects to the URL `apps.connections.open` gives, acks each envelope on the
socket, and runs the same listeners as in HTTP mode. Slack's endpoint is a loopback WebSocket server."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from websockets.sync.server import ServerConnection, serve

from bot.app import create_app
from bot.server import socket_mode
from settings import Settings
from storage import Database
from tests.bot.conftest import REP
from tests.clocks import FakeClock
from tests.fakeslack import FakeSlack


class FakeSocketEndpoint:
    """Slack's side of a Socket Mode connection: says hello, sends envelopes, collects the acks."""

    def __init__(self) -> None:
        self.outgoing: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=t1"

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}))
        self.connected.set()
        while True:
            with contextlib.suppress(queue.Empty):
                ws.send(json.dumps(self.outgoing.get(timeout=0.05)))
            try:
                self.acks.put(json.loads(ws.recv(timeout=0.05)))
            except TimeoutError:
                continue
            except Exception:  # the client closed the socket
                return

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def endpoint(slack: FakeSlack) -> Iterator[FakeSocketEndpoint]:
    ep = FakeSocketEndpoint()
    slack.socket_url = ep.url
    yield ep
    ep.close()


def test_a_slash_command_over_the_socket_is_acked_and_opens_the_modal(
    db: Database, slack: FakeSlack, settings: Settings, endpoint: FakeSocketEndpoint
) -> None:
    app = create_app(
        settings, db, clock=FakeClock(), client=WebClient(token=slack.token, base_url=slack.base_url)
    )
    handler = socket_mode(app, slack.app_token)
    handler.connect()  # what serve_socket_mode's start() does, without blocking the test
    try:
        assert endpoint.connected.wait(10)
        assert slack.of("apps.connections.open")  # asked Slack (the fake) where to connect
        endpoint.outgoing.put(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "command": "/handoff",
                    "text": "Acme Corp",
                    "user_id": REP,
                    "channel_id": "CSALES01",
                    "team_id": "T1",
                    "trigger_id": f"trig.{time.monotonic_ns()}",
                    "response_url": slack.response_url(),
                    "api_app_id": "A1",
                },
            }
        )
        ack = endpoint.acks.get(timeout=10)
        assert ack["envelope_id"] == "env-1"
        view = slack.wait_for("views.open", timeout=10)[0].args["view"]
        account = next(b for b in view["blocks"] if b.get("block_id") == "account_name")
        assert account["element"]["initial_value"] == "Acme Corp"
    finally:
        handler.close()
