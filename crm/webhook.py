"""HubSpot's signed webhooks (``X-HubSpot-Signature-v3``), as pure functions: the HTTP route
(``POST /api/v1/crm/hubspot/webhook``) checks the signature before it reads anything else, then hands
the deal ids to the same won-deal pass as the poll, whose stored CRM ids make a repeated delivery a
no-op.

The signature is base64(HMAC-SHA256(client secret, method + URI + body + timestamp)); the URI is the
full URL HubSpot called, with the URL-encoded characters HubSpot decodes before signing decoded too;
a timestamp more than 5 minutes from now is refused, so a captured request cannot be replayed later."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

WINDOW_MS = 5 * 60 * 1000
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
# HubSpot signs the URI with these decoded (its request-validation guide lists them)
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


class WebhookRefused(Exception):
    """Not a genuine, fresh HubSpot delivery; the message says which check failed (for the log, not
    the caller: the route answers 401 without detail)."""


def _uri(uri: str) -> str:
    out = uri
    for enc, ch in _DECODED.items():
        out = out.replace(enc, ch).replace(enc.lower(), ch)
    return out


def sign(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot would send (tests and the fake CRM sign with it too)."""
    source = method.upper().encode() + _uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def verify(
    secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
) -> None:
    """Raise WebhookRefused unless the request carries a valid v3 signature made within 5 minutes of
    ``now``. Without a secret nothing can be verified, so everything is refused."""
    if not secret:
        raise WebhookRefused("HUBSPOT_CLIENT_SECRET is not set: signed webhooks cannot be verified")
    if not signature or not timestamp:
        raise WebhookRefused(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} {timestamp[:20]!r} is not milliseconds") from None
    if abs(now.timestamp() * 1000 - sent) > WINDOW_MS:
        raise WebhookRefused("the timestamp is more than 5 minutes from now (a replay, or a clock off)")
    if not hmac.compare_digest(sign(secret, method, uri, body, timestamp), signature.strip()):
        raise WebhookRefused("the signature does not match")


def won_deal_ids(body: bytes, won_stages: Iterable[str]) -> list[str]:
    """The deals a delivery says reached a won stage (``deal.propertyChange`` of ``dealstage``, or a
    deal created won), each once, in order. Anything else in the batch is ignored; a body that is not
    a JSON list of events is refused."""
    try:
        events: Any = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(events, list):
        raise WebhookRefused("the body is not a list of events")
    stages, out = set(won_stages), []
    for e in events:
        if not isinstance(e, dict) or "objectId" not in e:
            continue
        kind = str(e.get("subscriptionType") or "")
        if kind == "deal.propertyChange" and e.get("propertyName") == "dealstage":
            hit = str(e.get("propertyValue")) in stages
        else:
            hit = kind == "deal.creation"  # its stage is checked when the deal is read
        deal = str(e["objectId"])
        if hit and deal not in out:
            out.append(deal)
    return out
