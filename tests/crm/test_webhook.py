"""HubSpot's v3 webhook signature: valid, tampered, stale, replayed; and which deals a delivery names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from crm.webhook import WebhookRefused, sign, verify, won_deal_ids

SECRET = "client-secret-1"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
URI = "https://baton.example.com/api/v1/crm/hubspot/webhook"
BODY = json.dumps(
    [
        {"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": 42, "propertyName": "dealstage",
         "propertyValue": "closedwon", "occurredAt": 1764579600000},
        {"eventId": 2, "subscriptionType": "deal.propertyChange", "objectId": 43, "propertyName": "dealstage",
         "propertyValue": "contractsent"},
        {"eventId": 3, "subscriptionType": "deal.propertyChange", "objectId": 42, "propertyName": "dealstage",
         "propertyValue": "closedwon"},
        {"eventId": 4, "subscriptionType": "contact.creation", "objectId": 7},
        {"eventId": 5, "subscriptionType": "deal.creation", "objectId": 44},
    ]
).encode()  # fmt: skip


def ms(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def check(*, body: bytes = BODY, uri: str = URI, ts: datetime = NOW, signature: str | None = None,
          secret: str = SECRET, method: str = "POST") -> None:  # fmt: skip
    stamp = ms(ts)
    verify(
        secret,
        method=method,
        uri=uri,
        body=body,
        timestamp=stamp,
        signature=signature if signature is not None else sign(SECRET, "POST", URI, BODY, stamp),
        now=NOW,
    )


def test_the_signature_is_hmac_sha256_over_method_uri_body_and_timestamp() -> None:
    stamp = ms(NOW)
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), b"POST" + URI.encode() + BODY + stamp.encode(), hashlib.sha256).digest()
    ).decode()
    assert sign(SECRET, "POST", URI, BODY, stamp) == expected
    check(signature=expected)


def test_a_request_four_minutes_old_passes() -> None:
    check(ts=NOW - timedelta(minutes=4, seconds=59))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": BODY.replace(b"closedwon", b"closedwom", 1)}, "does not match"),
        ({"uri": URI + "?x=1"}, "does not match"),
        ({"method": "PUT"}, "does not match"),
        ({"secret": "another-secret"}, "does not match"),
        ({"ts": NOW - timedelta(minutes=5, seconds=1)}, "5 minutes"),
        ({"ts": NOW + timedelta(minutes=6)}, "5 minutes"),
        ({"signature": ""}, "missing"),
        ({"secret": ""}, "HUBSPOT_CLIENT_SECRET"),
    ],
)
def test_anything_changed_or_stale_is_refused(change: dict[str, object], reason: str) -> None:
    with pytest.raises(WebhookRefused, match=reason):
        check(**change)  # type: ignore[arg-type]


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(WebhookRefused, match="milliseconds"):
        verify(SECRET, method="POST", uri=URI, body=BODY, timestamp="yesterday", signature="x", now=NOW)


def test_the_uri_is_signed_with_the_characters_hubspot_decodes_decoded() -> None:
    encoded = "https://baton.example.com/api/v1/crm/hubspot/webhook?from=a%3Ab%40c%2Cd"
    decoded = "https://baton.example.com/api/v1/crm/hubspot/webhook?from=a:b@c,d"
    stamp = ms(NOW)
    assert sign(SECRET, "POST", encoded, BODY, stamp) == sign(SECRET, "POST", decoded, BODY, stamp)
    assert sign(SECRET, "POST", encoded, BODY, stamp) != sign(SECRET, "POST", URI, BODY, stamp)


def test_a_delivery_names_each_won_deal_once() -> None:
    assert won_deal_ids(BODY, ["closedwon"]) == ["42", "44"]  # 44: created, its stage is read after


@pytest.mark.parametrize("body", [b"{not json", b'{"objectId": 1}'])
def test_a_body_that_is_not_a_list_of_events_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookRefused):
        won_deal_ids(body, ["closedwon"])
