"""`POST /api/v1/crm/hubspot/webhook`: HubSpot's signed deliveries, on the same server as /slack/events.

The signature (``X-HubSpot-Signature-v3``, 5-minute window) is checked on the raw body before anything
is parsed; a bad or old one is 401 without detail (the reason goes to the log). The deal ids the
delivery names as won are stored (``crm_inbox``) and the route answers 200 at once: no CRM call is made
before answering, since HubSpot gives a delivery 5 seconds and retries it otherwise. The next CRM pass
(or ``kick``, which starts one in the background) reads those deals. A repeated delivery stores nothing
new, and a deal taken before is skipped by its id."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from clock import Clock
from crm import inbox
from crm.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookRefused, verify, won_deal_ids
from storage import Database

log = logging.getLogger(__name__)
PATH = "/api/v1/crm/hubspot/webhook"
MAX_BODY = 256 * 1024  # HubSpot batches at most 100 events, a few hundred bytes each
StartResponse = Callable[..., Any]


def _json(
    start_response: StartResponse, status: str, body: dict[str, Any], **headers: str
) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    hdrs += [(k.replace("_", "-"), v) for k, v in headers.items()]
    start_response(status, hdrs)
    return [data]


def _header(environ: dict[str, Any], name: str) -> str | None:
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def public_uri(environ: dict[str, Any], public_url: str = "") -> str:
    """The URL HubSpot called, which it signs. ``BATON_PUBLIC_URL`` when set (behind a proxy that
    rewrites Host); else https (HubSpot only calls https targets) and the request's Host. Waitress drops
    X-Forwarded-* from untrusted peers, so those are not read."""
    query = environ.get("QUERY_STRING") or ""
    tail = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    if public_url:
        return public_url.rstrip("/") + tail
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    return f"https://{host}{tail}"


class HubSpotWebhookAPI:
    def __init__(
        self,
        db: Database,
        *,
        secret: str,
        won_stages: Iterable[str],
        clock: Clock,
        kick: Callable[[], None] | None = None,
        public_url: str = "",
    ) -> None:
        self.db, self.secret, self.clock, self.kick = db, secret, clock, kick
        self.public_url = public_url
        self.won_stages = tuple(won_stages)

    def handles(self, path: str) -> bool:
        return path == PATH

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _json(start_response, "405 Method Not Allowed", {"error": "use POST"}, Allow="POST")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0:
            return _json(start_response, "411 Length Required", {"error": "send a Content-Length"})
        if length > MAX_BODY:
            return _json(
                start_response, "413 Content Too Large", {"error": f"the body is over {MAX_BODY} bytes"}
            )
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            verify(
                self.secret,
                method="POST",
                uri=public_uri(environ, self.public_url),
                body=body,
                timestamp=_header(environ, TIMESTAMP_HEADER),
                signature=_header(environ, SIGNATURE_HEADER),
                now=self.clock(),
            )
        except WebhookRefused as exc:
            log.warning("HubSpot webhook refused: %s", exc)
            return _json(start_response, "401 Unauthorized", {"error": "invalid signature"})
        try:
            ids = won_deal_ids(body, self.won_stages)
        except WebhookRefused as exc:
            return _json(start_response, "400 Bad Request", {"error": f"{exc}: send HubSpot's event list"})
        with self.db.session() as session:
            queued = inbox.receive(session, "hubspot", ids, self.clock())
        if queued and self.kick is not None:
            try:
                self.kick()
            except Exception:  # the pass runs on schedule anyway; the delivery is stored
                log.warning("could not start the CRM pass after a webhook", exc_info=True)
        return _json(start_response, "200 OK", {"deals": len(ids), "queued": queued})


class Routes:
    """Several APIs behind the one ``api`` the server mounts (bot/server.py asks ``handles(path)``)."""

    def __init__(self, *apis: Any) -> None:
        self.apis = [a for a in apis if a is not None]

    def handles(self, path: str) -> bool:
        return any(a.handles(path) for a in self.apis)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        return next(a for a in self.apis if a.handles(path))(environ, start_response)
