"""`POST /api/v1/crm/hubspot/webhook` over real HTTP, on the same server as the ingest API: signature
good, bad, replayed and repeated; bodies too big or not events; the deals stored for the next pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.crm_webhook import PATH, HubSpotWebhookAPI, Routes
from api.ingest import IngestAPI
from bot.server import create_wsgi
from crm.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from storage import Database
from storage.models import CrmDeal, CrmInbox
from tests.clocks import FakeClock
from tests.servers import serving

SECRET = "hubspot-client-secret"
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def won(*deal_ids: int, stage: str = "closedwon") -> bytes:
    return json.dumps(
        [
            {"eventId": 100 + i, "subscriptionType": "deal.propertyChange", "propertyName": "dealstage",
             "propertyValue": stage, "objectId": d, "occurredAt": 1764550800000}
            for i, d in enumerate(deal_ids)
        ]
    ).encode()  # fmt: skip


@pytest.fixture
def hook(db: Database) -> Iterator[tuple[httpx.Client, str, list[int]]]:
    kicks: list[int] = []
    api = Routes(
        IngestAPI(db, token="t", clock=FakeClock(NOW)),
        HubSpotWebhookAPI(
            db, secret=SECRET, won_stages=["closedwon"], clock=FakeClock(NOW), kick=lambda: kicks.append(1)
        ),
    )
    with serving(create_wsgi(None, db, api)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, url, kicks


def post(client: httpx.Client, url: str, body: bytes, *, at: datetime = NOW, secret: str = SECRET,
         signed_uri: str | None = None, **headers: str) -> httpx.Response:  # fmt: skip
    """Signed as HubSpot signs: the https URL it called (it only calls https targets)."""
    ts = str(int(at.timestamp() * 1000))
    sig = sign(secret, "POST", signed_uri or https(url) + PATH, body, ts)
    hdrs = {"Content-Type": "application/json", SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: ts, **headers}
    return client.post(PATH, content=body, headers=hdrs)


def https(url: str) -> str:
    return url.replace("http://", "https://")


def waiting(db: Database) -> list[str]:
    with db.session() as s:
        return list(
            s.scalars(select(CrmInbox.deal_id).where(CrmInbox.done_at.is_(None)).order_by(CrmInbox.id))
        )


def test_a_signed_delivery_stores_its_won_deals_and_answers_at_once(db: Database, hook: Any) -> None:
    client, url, kicks = hook
    other = {"subscriptionType": "deal.propertyChange", "propertyName": "dealstage",
             "propertyValue": "qualified", "objectId": 1003}  # fmt: skip
    body = json.dumps([*json.loads(won(1001, 1002)), other]).encode()
    resp = post(client, url, body)
    assert resp.status_code == 200 and resp.json() == {"deals": 2, "queued": 2}
    assert waiting(db) == ["1001", "1002"] and kicks == [1]


def test_a_repeated_delivery_or_a_deal_already_taken_stores_nothing(db: Database, hook: Any) -> None:
    client, url, kicks = hook
    with db.session() as s:
        s.add(CrmDeal(crm="hubspot", deal_id="1002", deal={}, found_at=NOW))
    assert post(client, url, won(1001, 1002)).json() == {"deals": 2, "queued": 1}
    again = post(client, url, won(1001, 1002), at=NOW - timedelta(minutes=1))  # HubSpot's retry
    assert again.status_code == 200 and again.json() == {"deals": 2, "queued": 0}
    assert waiting(db) == ["1001"] and kicks == [1]


@pytest.mark.parametrize(
    "case",
    ["wrong_secret", "tampered_body", "replayed_6_min_later", "future", "no_signature"],
)
def test_a_bad_or_old_signature_is_401_and_stores_nothing(db: Database, hook: Any, case: str) -> None:
    client, url, kicks = hook
    body = won(1001)
    if case == "wrong_secret":
        resp = post(client, url, body, secret="guess")
    elif case == "tampered_body":
        ts = str(int(NOW.timestamp() * 1000))
        sig = sign(SECRET, "POST", https(url) + PATH, body, ts)
        resp = client.post(PATH, content=won(6666), headers={SIGNATURE_HEADER: sig, TIMESTAMP_HEADER: ts})
    elif case == "replayed_6_min_later":
        resp = post(client, url, body, at=NOW - timedelta(minutes=6))
    elif case == "future":
        resp = post(client, url, body, at=NOW + timedelta(minutes=6))
    else:
        resp = client.post(PATH, content=body)
    assert resp.status_code == 401 and resp.json() == {"error": "invalid signature"}
    assert waiting(db) == [] and kicks == []


def test_the_signature_covers_the_url_hubspot_called(db: Database, hook: Any) -> None:
    client, url, _ = hook
    assert post(client, url, won(1002), signed_uri=url + PATH).status_code == 401  # http: not what it called
    assert post(client, url, won(1002), signed_uri=https(url) + "/other").status_code == 401


def test_behind_a_proxy_the_public_url_is_what_is_signed(db: Database) -> None:
    public = "https://baton.example.com"
    api = HubSpotWebhookAPI(
        db, secret=SECRET, won_stages=["closedwon"], clock=FakeClock(NOW), public_url=public
    )
    with serving(create_wsgi(None, db, api)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert post(client, url, won(1001), signed_uri=public + PATH).status_code == 200
        assert post(client, url, won(1002)).status_code == 401
    assert waiting(db) == ["1001"]


def test_bodies_too_big_or_not_events_are_refused(db: Database, hook: Any) -> None:
    client, url, _ = hook
    big = b"[" + b" " * (300 * 1024) + b"]"
    assert post(client, url, big).status_code == 413
    resp = post(client, url, b'{"objectId": 1}')
    assert resp.status_code == 400 and "list of events" in resp.json()["error"]
    assert post(client, url, b"not json").status_code == 400
    assert client.get(PATH).status_code == 405
    assert waiting(db) == []


def test_the_ingest_api_is_still_served_beside_it(hook: Any) -> None:
    client, _, _ = hook
    assert (
        client.post("/api/v1/accounts", content="x", headers={"Content-Type": "text/csv"}).status_code == 401
    )
    assert client.get("/api/v1/nothing").status_code == 404
