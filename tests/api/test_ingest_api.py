"""The ingest API over real HTTP: bearer token, CSV and JSON bodies, 4xx with reasons."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from api.ingest import IngestAPI
from bot.server import create_wsgi
from storage import Database
from storage.models import Account, CompanyMetric, DataImport, Signal, Touch
from tests.clocks import FakeClock
from tests.ingest.test_ingest import ACCOUNTS
from tests.servers import CountingStream, serving

TOKEN = "ingest-token-123"


@pytest.fixture
def api(db: Database) -> Iterator[tuple[httpx.Client, Database]]:
    wsgi = create_wsgi(None, db, IngestAPI(db, token=TOKEN, clock=FakeClock()))
    with serving(wsgi) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, db


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_requests_without_the_token_are_401(api) -> None:
    client, _ = api
    assert (
        client.post("/api/v1/signals", content="x", headers={"Content-Type": "text/csv"}).status_code == 401
    )
    wrong = {"Authorization": "Bearer nope", "Content-Type": "text/csv"}
    resp = client.post("/api/v1/signals", content="x", headers=wrong)
    assert resp.status_code == 401 and resp.json()["error"] == "missing or wrong bearer token"


def test_accounts_then_signals_as_csv_and_json(api) -> None:
    client, db = api
    resp = client.post(
        "/api/v1/accounts?as_of=2026-11-01", content=ACCOUNTS, headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 200 and resp.json() == {
        "rows": 2,
        "as_of": "2026-11-01",
        "created": 2,
        "updated": 0,
        "linked": 0,
    }
    body = '[{"account_id": "A1", "date": "2026-11-02", "metric": "logins", "value": 3}]'
    resp = client.post("/api/v1/signals", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json() == {"rows": 1}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 1


def test_bad_rows_are_422_with_each_line_and_nothing_written(api) -> None:
    client, db = api
    bad = ACCOUNTS + "A3,X,Pro,abc,1,2026-01-01,2027-01-01,,,,\n"
    resp = client.post("/api/v1/accounts", content=bad, headers={**AUTH, "Content-Type": "text/csv"})
    assert resp.status_code == 422
    assert resp.json()["problems"] == [
        {
            "line": 4,
            "message": "mrr 'abc' is not an amount >= 0 with at most 2 decimals"
            " (120000, ¥120,000, 120,000円)",
        }
    ]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0


def test_wrong_media_type_method_and_as_of(api) -> None:
    client, _ = api
    assert (
        client.post(
            "/api/v1/signals", content="x", headers={**AUTH, "Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert client.get("/api/v1/signals", headers=AUTH).status_code == 405
    resp = client.post(
        "/api/v1/accounts?as_of=yesterday", content=ACCOUNTS, headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 400 and "as_of" in resp.json()["error"]


def test_company_metrics_as_ndjson_and_a_misspelt_metric_is_422(api) -> None:
    client, db = api
    body = (
        '{"date": "2026-11-20", "metric": "leads", "value": 12}\n'
        '{"date": "2026-11-20", "metric": "wins", "value": 2}\n'
    )
    ndjson = {**AUTH, "Content-Type": "application/x-ndjson"}
    assert client.post("/api/v1/metrics", content=body, headers=ndjson).json() == {"rows": 2}
    bad = client.post(
        "/api/v1/metrics",
        content="date,metric,value\n2026-11-20,leeds,3\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["line"] == 2
    assert "metric 'leeds' is not one Baton knows" in bad.json()["problems"][0]["message"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(CompanyMetric)) == 2


def test_touches_from_other_systems_are_logged_once(api) -> None:
    client, db = api
    client.post(
        "/api/v1/accounts?as_of=2026-11-01", content=ACCOUNTS, headers={**AUTH, "Content-Type": "text/csv"}
    )
    body = '[{"account_id": "A1", "date": "2026-11-20", "kind": "welcome"}]'
    json_body = {**AUTH, "Content-Type": "application/json"}
    assert client.post("/api/v1/touches", content=body, headers=json_body).json() == {"rows": 1, "skipped": 0}
    assert client.post("/api/v1/touches", content=body, headers=json_body).json() == {"rows": 0, "skipped": 1}
    bad = client.post(
        "/api/v1/touches", content='[{"account_id": "A1", "kind": "welcome"}]', headers=json_body
    )
    assert bad.status_code == 422 and bad.json()["problems"] == [{"line": 1, "message": "missing date"}]
    with db.session() as s:
        assert s.scalars(select(Touch.logged_by)).all() == ["api"]


JP = ACCOUNTS.replace("Acme Corp", "株式会社ミライ物流㈱")  # ㈱: CP932 has it, strict Shift_JIS does not


@pytest.mark.parametrize(
    "ctype", ["text/csv; charset=shift_jis", 'text/csv; charset="Shift_JIS"', "text/csv"]
)
def test_a_shift_jis_body_is_read_by_its_charset_or_detected(api, ctype: str) -> None:
    client, db = api
    resp = client.post(
        "/api/v1/accounts", content=JP.encode("cp932"), headers={**AUTH, "Content-Type": ctype}
    )
    assert resp.status_code == 200, resp.text
    with db.session() as s:
        assert "株式会社ミライ物流㈱" in s.scalars(select(Account.name)).all()


def test_an_undecodable_body_is_422_with_the_reason_and_an_unknown_charset_415(api) -> None:
    client, db = api
    utf8 = {**AUTH, "Content-Type": "text/csv; charset=utf-8"}
    resp = client.post("/api/v1/accounts", content=JP.encode("cp932"), headers=utf8)
    assert resp.status_code == 422
    assert resp.json()["error"] == (
        "the body is not valid UTF-8 text: send UTF-8, or name its encoding as in "
        "Content-Type: text/csv; charset=shift_jis"
    )
    resp = client.post(
        "/api/v1/accounts", content=bytes(range(128, 256)) * 4, headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 422 and "not text in an encoding Baton recognises" in resp.json()["error"]
    klingon = {**AUTH, "Content-Type": "text/csv; charset=klingon"}
    resp = client.post("/api/v1/accounts", content=ACCOUNTS, headers=klingon)
    assert resp.status_code == 415 and "charset 'klingon'" in resp.json()["error"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0


def test_a_big_body_without_the_token_is_refused_before_it_is_read(db: Database) -> None:
    stream = CountingStream(100 * 1024 * 1024)  # the API takes big bodies, but only from its token holder
    wsgi = create_wsgi(None, db, IngestAPI(db, token=TOKEN, clock=FakeClock()))
    environ = {
        "PATH_INFO": "/api/v1/metrics",
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "text/csv",
        "CONTENT_LENGTH": str(stream.left),
        "HTTP_AUTHORIZATION": "Bearer nope",
        "wsgi.input": stream,
    }
    seen: list[str] = []
    b"".join(wsgi(environ, lambda status, headers: seen.append(status)))
    assert seen == ["401 Unauthorized"] and stream.read_bytes == 0


def test_signals_while_another_import_applies_are_409_and_nothing_is_written(api) -> None:
    client, db = api
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL imports signals in one transaction, which blocks no one: nothing waits")
    client.post(
        "/api/v1/accounts?as_of=2026-11-01", content=ACCOUNTS, headers={**AUTH, "Content-Type": "text/csv"}
    )
    now = FakeClock()()
    with db.session() as s:  # another instance's import, its heartbeat fresh
        s.add(DataImport(kind="signals", state="applying", rows=10, started_at=now, heartbeat_at=now))
    body = "account_id,date,metric,value\nA1,2026-11-02,logins,3\n"
    resp = client.post("/api/v1/signals", content=body, headers={**AUTH, "Content-Type": "text/csv"})
    assert resp.status_code == 409
    assert "another signals import" in resp.json()["error"] and "nothing was written" in resp.json()["error"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 0


def test_accounts_while_another_import_applies_are_409_and_nothing_is_written(api) -> None:
    """Accounts files are staged like signals on SQLite, and one import applies at a time, whatever
    its kind (undoing accounts deletes the ones it created, which signals could be written to)."""
    client, db = api
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL imports accounts in one transaction, which blocks no one: nothing waits")
    now = FakeClock()()
    with db.session() as s:  # another instance's signals import, its heartbeat fresh
        s.add(DataImport(kind="signals", state="applying", rows=10, started_at=now, heartbeat_at=now))
    resp = client.post(
        "/api/v1/accounts?as_of=2026-11-01", content=ACCOUNTS, headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 409
    assert "another signals import" in resp.json()["error"] and "nothing was written" in resp.json()["error"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0
