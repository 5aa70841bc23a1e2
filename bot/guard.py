"""What every Slack request passes before a listener sees it: it comes from the workspace Baton is
installed in, and nothing about a refused request (its body above all) reaches the logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltContext, BoltResponse
from slack_sdk import WebClient

log = logging.getLogger(__name__)
_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"
_BAD_SIGNATURE = "Invalid request signature detected"


class _NoBodies(logging.Filter):
    """Bolt logs the whole body of a request whose signature fails: an unsigned 200 MB post became 200 MB
    of log. Keep the fact, drop the body (and the signature, which is the sender's guess)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(_BAD_SIGNATURE):
            record.msg, record.args = f"{_BAD_SIGNATURE} (request body not logged)", ()
        return True


def quiet_request_verification() -> None:
    """Install the filter on Bolt's verification logger, once per process."""
    logger = logging.getLogger(_VERIFICATION_LOGGER)
    if not any(isinstance(f, _NoBodies) for f in logger.filters):
        logger.addFilter(_NoBodies())


class Installed:
    """The workspace (and Enterprise Grid org) Baton's token belongs to, from ``auth.test``, asked once."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._ids: tuple[str | None, str | None] | None = None

    def ids(self) -> tuple[str | None, str | None]:
        with self._lock:
            if self._ids is None:
                resp = self._client.auth_test()
                self._ids = (resp.get("team_id"), resp.get("enterprise_id"))
            return self._ids


def same_workspace(client: WebClient) -> Callable[..., Any]:
    """A global middleware refusing requests whose team is not Baton's own: a payload naming another
    workspace (a forged one, or a Slack Connect guest's) acts on nothing. Under Enterprise Grid the
    org's id is accepted too."""
    installed = Installed(client)

    def middleware(context: BoltContext, next: Callable[[], None]) -> BoltResponse | None:
        try:
            team, enterprise = installed.ids()
        except Exception:  # cannot tell whose request this is: refuse, Slack retries events
            log.warning("auth.test failed; refusing the request until it answers", exc_info=True)
            return BoltResponse(status=503, body="")
        if (team and context.team_id == team) or (enterprise and context.enterprise_id == enterprise):
            next()
            return None
        log.warning("refused a request from team %s (installed in %s)", context.team_id, team)
        return BoltResponse(status=403, body="")

    return middleware
