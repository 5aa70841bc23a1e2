"""The scheduled pull against a real HTTP server on loopback: pages, auth, retries, bad records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from ingest.pull import PullError, pull
from settings import PullRules
from storage import Database
from storage.models import Signal
from tests.alerts.factory import accounts


class Source:
    def __init__(self) -> None:
        self.pages: dict[str, dict[str, Any]] = {}
        self.fail_first: list[int] = []
        self.seen_auth: list[str | None] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                source.seen_auth.append(self.headers.get("Authorization"))
                if source.fail_first:
                    status = source.fail_first.pop(0)
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "9")
                    self.end_headers()
                    return
                body = json.dumps(source.pages[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"


@pytest.fixture
def source() -> Iterator[Source]:
    s = Source()
    yield s
    s.server.shutdown()


def rec(acct: str, day: str, value: float) -> dict[str, Any]:
    return {"customer": {"id": acct}, "day": day, "name": "active_users", "count": value}


RULES = dict(
    items_path="result.items",
    next_path="result.next",
    fields={"account_id": "customer.id", "date": "day", "metric": "name", "value": "count"},
    auth_header="Authorization: Bearer ${BATON_TEST_PULL_TOKEN}",
)


def test_pages_are_followed_with_auth_and_mapped_fields(db: Database, source: Source, monkeypatch) -> None:
    monkeypatch.setenv("BATON_TEST_PULL_TOKEN", "s3cret")
    accounts(db, ("A1", 10, "Pro"))
    source.pages = {
        "/p1": {"result": {"items": [rec("A1", "2026-11-01", 3)], "next": "/p2"}},
        "/p2": {"result": {"items": [rec("A1", "2026-11-02", 4)], "next": None}},
    }
    source.fail_first = [503, 429]
    waits: list[float] = []
    result = _pull(db, PullRules(url=source.url("/p1"), **RULES), sleep=waits.append)
    assert result.rows == 2 and waits == [1, 9]  # backoff, then the 429's Retry-After; no real sleeping
    assert set(source.seen_auth) == {"Bearer s3cret"}
    with db.session() as s:
        assert s.scalar(select(func.sum(Signal.value))) == 7


def _pull(db: Database, rules: PullRules, **kw: Any) -> Any:
    with db.session() as session:
        return pull(session, rules, today=date(2026, 11, 2), **kw)


def test_a_bad_record_refuses_the_whole_pull(db: Database, source: Source) -> None:
    accounts(db, ("A1", 10, "Pro"))
    source.pages = {"/p1": {"result": {"items": [rec("A1", "2026-11-01", 3), rec("NOPE", "2026-11-01", 1)]}}}
    from ingest import IngestError

    with pytest.raises(IngestError) as exc:
        _pull(db, PullRules(url=source.url("/p1"), **RULES), sleep=lambda s: None)
    assert "unknown account_id 'NOPE'" in exc.value.problems[0].message
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 0


def test_a_source_that_keeps_failing_gives_up_with_the_reason(db: Database, source: Source) -> None:
    source.fail_first = [500] * 10
    with pytest.raises(PullError, match="answered 500 \\(after 5 tries\\)"):
        _pull(db, PullRules(url=source.url("/p1"), **RULES), sleep=lambda s: None)
    source.fail_first = [404]
    with pytest.raises(PullError, match="answered 404"):
        _pull(db, PullRules(url=source.url("/p1"), **RULES), sleep=lambda s: None)


def test_the_scheduled_pull_job_runs_on_a_real_database_once(db: Database, source: Source) -> None:
    """The job's ledger row and the pull share one unit of work: on SQLite a second session would wait
    on the ledger's write lock and fail with "database is locked" every time."""
    from datetime import UTC, datetime

    from jobs.scheduler import PULL, Jobs
    from settings import Rules, Settings
    from storage.models import JobRun
    from tests.clocks import FakeClock

    accounts(db, ("A1", 10, "Pro"))
    source.pages = {"/p1": {"result": {"items": [rec("A1", "2026-11-01", 3)], "next": None}}}
    rules = PullRules(url=source.url("/p1"), **{k: v for k, v in RULES.items() if k != "auth_header"})
    settings = Settings(rules=Rules.load(None))
    clock = FakeClock(datetime(2026, 11, 2, 21, 30, tzinfo=UTC))  # 06:30 in Tokyo
    jobs = Jobs(
        db,
        settings,
        clock,
        pull=lambda session: pull(session, rules, today=date(2026, 11, 3), sleep=lambda s: None),
    )
    assert jobs.pull_job() is True
    assert jobs.pull_job() is False  # the same day's slot: done already
    with db.session() as s:
        assert s.scalar(select(func.sum(Signal.value))) == 3
        run = s.scalars(select(JobRun).where(JobRun.job_id == PULL)).one()
        assert run.finished_at is not None and "1" in run.outcome


def test_a_far_future_day_from_the_source_is_refused(db: Database, source: Source) -> None:
    accounts(db, ("A1", 10, "Pro"))
    source.pages = {"/p1": {"result": {"items": [rec("A1", "2099-01-01", 3)], "next": None}}}
    from ingest import IngestError

    with pytest.raises(IngestError) as exc:
        _pull(db, PullRules(url=source.url("/p1"), **RULES), sleep=lambda s: None)
    assert "2099-01-01" in exc.value.problems[0].message or "date" in exc.value.problems[0].message
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 0
