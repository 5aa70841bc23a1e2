"""Hostile bodies over real HTTP: 422 with a reason (they were 500s), nothing written."""

from __future__ import annotations

import pytest

from storage.models import Account, Signal
from tests.api.test_ingest_api import AUTH, api  # noqa: F401  (the fixture)
from tests.ingest.test_ingest import ACCOUNTS, count

CSV, JSON = {**AUTH, "Content-Type": "text/csv"}, {**AUTH, "Content-Type": "application/json"}
HEAD = "account_id,name,plan,mrr,seats,contract_start,renewal_date\n"


@pytest.mark.parametrize(
    ("path", "body", "headers", "reason"),
    [
        ("/api/v1/signals", '[{"value": ' + "1" * 5000 + "}]", JSON, "4,300 digits"),
        ("/api/v1/signals", "[" * 100_000 + "]" * 100_000, JSON, "nested too deeply"),
        (
            "/api/v1/accounts",
            HEAD + "A9,Nine,Pro,1," + "1" + "0" * 20 + ",2026-01-01,2027-01-01\n",
            CSV,
            "seats",
        ),
        ("/api/v1/accounts", HEAD + f"A9,Nine,Pro,1,{2**31},2026-01-01,2027-01-01\n", CSV, "seats"),
        ("/api/v1/accounts", HEAD + 'A9,Nine,Pro,1,1,2026-01-01,"' + "x" * 140_000 + '"\n', CSV, "131,072"),
        ("/api/v1/accounts", HEAD + "A9,Nu\x00ll,Pro,1,1,2026-01-01,2027-01-01\n", CSV, "NUL"),
        ("/api/v1/accounts?as_of=9999-12-31", ACCOUNTS, CSV, "as_of 9999-12-31 is outside"),
        ("/api/v1/metrics", "when,what\n2026-11-01,3\n", CSV, "header names none of"),
    ],
)
def test_hostile_bodies_are_422_with_the_reason_and_write_nothing(api, path, body, headers, reason) -> None:  # noqa: F811
    client, db = api
    resp = client.post(path, content=body.encode(), headers=headers)
    assert resp.status_code == 422, resp.text
    assert any(reason in p["message"] for p in resp.json()["problems"]), resp.json()
    assert count(db, Account) == 0 and count(db, Signal) == 0
