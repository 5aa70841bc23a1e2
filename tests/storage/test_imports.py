"""Big signal imports: checked into a private stage (no write lock held), applied in short transactions,
and all or nothing even when the process dies part-way."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from ingest import BATCH, IngestError, Row, import_signals, records
from storage import Database, imports
from storage.models import DataImport, Signal, SignalUndo
from tests.clocks import FakeClock
from tests.concurrency import write_meanwhile
from tests.ingest.test_ingest import count, load_accounts, load_signals

DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(20)]


def _csv(value: float, metrics: int = 3) -> str:
    lines = ["account_id,date,metric,value"]
    for d in DAYS:
        for aid in ("A1", "A2"):
            lines += [f"{aid},{d},m{i},{value}" for i in range(metrics)]
    return "\n".join(lines) + "\n"


def _values(db: Database) -> dict[tuple, float]:
    with db.session() as s:
        return {(r.day, r.account_id, r.metric): r.value for r in s.scalars(select(Signal))}


def _import(db: Database, body: str, clock: FakeClock | None = None):
    # staged on both databases (PostgreSQL's default is one transaction): the machinery is the same SQL
    return import_signals(db, records(io.StringIO(body), "csv"), clock=clock or FakeClock(), staged=True)


@pytest.fixture
def book(db: Database) -> Database:
    """Two accounts, and 20 days x 2 metrics already stored at 1.0: an import overwrites some, adds some."""
    load_accounts(db)
    load_signals(db, _csv(1.0, metrics=2))
    return db


def test_an_import_lands_whole_and_leaves_no_undo_rows(book: Database, monkeypatch) -> None:
    monkeypatch.setattr(imports, "CHUNK", 7)  # many chunks, the last one partial
    result = _import(book, _csv(2.0))
    assert result.rows == 120 and result.details["recovered"] == []
    assert set(_values(book).values()) == {2.0} and len(_values(book)) == 120
    assert count(book, SignalUndo) == 0
    with book.session() as s:
        (done,) = s.scalars(select(DataImport)).all()
    assert (done.state, done.rows) == ("done", 120)


def test_a_refused_file_writes_nothing_and_records_no_import(book: Database) -> None:
    before = _values(book)
    with pytest.raises(IngestError):
        _import(book, _csv(2.0) + "A1,2026-11-02,m0,not-a-number\n")
    assert _values(book) == before and count(book, DataImport) == 0


def test_slack_writes_go_through_while_a_file_is_read(book: Database) -> None:
    """The write lock is not held while the file streams in: a handoff submitted meanwhile is stored at
    once, not after a busy timeout longer than Slack's 3 s (one SQLite writer locks the whole file)."""
    wrote: list[str] = []

    def rows() -> Iterator[Row]:
        for n, row in enumerate(records(io.StringIO(_csv(3.0, metrics=150)), "csv")):
            if n == BATCH + 500:  # past the first batch, which a single transaction would have written
                sql = "UPDATE accounts SET name = name || '!' WHERE external_id = 'A1'"
                write_meanwhile(book.engine, sql, wrote)
            yield row

    import_signals(book, rows(), clock=FakeClock())  # the default: staged on SQLite, one transaction on PG
    assert wrote == ["ok"] and set(_values(book).values()) == {3.0} and len(_values(book)) == 6000


def test_a_failure_part_way_puts_back_what_was_written(book: Database, monkeypatch) -> None:
    before = _values(book)
    monkeypatch.setattr(imports, "CHUNK", 10)
    real = imports._APPLY
    calls = []

    def failing_execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if statement is real:
            calls.append(1)
            if len(calls) == 4:
                raise OSError("disk full")
        return original(self, statement, *args, **kwargs)

    from sqlalchemy.engine import Connection

    original = Connection.execute
    monkeypatch.setattr(Connection, "execute", failing_execute)
    with pytest.raises(OSError):
        _import(book, _csv(5.0))
    monkeypatch.setattr(Connection, "execute", original)
    assert _values(book) == before  # overwritten rows have their old values, added rows are gone
    with book.session() as s:
        assert s.scalars(select(DataImport.state)).all() == ["rolled_back"]
    assert count(book, SignalUndo) == 0


def _die_after(book: Database, chunks: int, clock: FakeClock, monkeypatch) -> None:
    """What kill -9 leaves: ``chunks`` chunks applied and committed, the import still ``applying``."""
    monkeypatch.setattr(imports, "CHUNK", 10)
    real, calls = imports._APPLY, []
    from sqlalchemy.engine import Connection

    original = Connection.execute

    def dying(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if statement is real:
            calls.append(1)
            if len(calls) > chunks:
                raise SystemExit("killed")
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", dying)
    monkeypatch.setattr(imports, "_undo", lambda *a, **k: False)  # the dead do not clean up
    with pytest.raises(SystemExit):
        _import(book, _csv(7.0), clock)
    monkeypatch.undo()


def test_an_import_whose_process_died_is_rolled_back_once_its_heartbeat_is_stale(
    book: Database, monkeypatch
) -> None:
    before = _values(book)
    clock = FakeClock()
    _die_after(book, 3, clock, monkeypatch)
    assert 7.0 in set(_values(book).values())  # three chunks are visible: this is the damage to undo
    assert imports.recover(book, clock) == []  # within its lease the owner may still be alive
    clock.advance(minutes=3)
    (undone,) = imports.recover(book, clock)
    assert undone.rows == 120
    assert _values(book) == before and count(book, SignalUndo) == 0
    assert imports.recover(book, clock) == []


def test_the_next_import_recovers_first_and_a_live_one_makes_it_wait(book: Database, monkeypatch) -> None:
    clock = FakeClock()
    _die_after(book, 2, clock, monkeypatch)
    with pytest.raises(imports.ImportBusy, match="being applied"):
        _import(book, _csv(9.0, metrics=1), clock)  # its heartbeat is fresh: another process is at work
    clock.advance(minutes=3)
    result = _import(book, _csv(9.0, metrics=1), clock)
    assert [r.rows for r in result.details["recovered"]] == [120]
    values = _values(book)
    assert {v for (_, _, m), v in values.items() if m == "m0"} == {9.0}
    assert {v for (_, _, m), v in values.items() if m == "m1"} == {1.0} and len(values) == 80


def test_the_cli_says_it_rolled_back_what_a_crash_left_and_is_one_line_when_busy(
    book: Database, monkeypatch, tmp_path, capsys
) -> None:
    from alerts.cli import ingest_file
    from cli import words

    clock = FakeClock()
    _die_after(book, 2, clock, monkeypatch)
    path = tmp_path / "signals.csv"
    path.write_text(_csv(4.0, metrics=1))

    def run(lang: str) -> int:
        return ingest_file(book, "signals", path, as_of=clock().date(), fmt=None, clock=clock, tr=words(lang))

    if book.engine.dialect.name == "sqlite":  # PostgreSQL imports in one transaction: no one waits
        assert run("en") == 1
        err = capsys.readouterr().err.strip()
        assert "is being applied" in err and err.endswith("Nothing was written.") and "\n" not in err
    clock.advance(minutes=3)
    assert run("ja") == 0
    out = capsys.readouterr().out
    assert "11月23日から途中で止まっていた取り込み（シグナル120件）を取り消しました。" in out
    assert "シグナル40件を保存しました。" in out


def test_kill_9_mid_import_leaves_nothing_once_recovered(tmp_path) -> None:
    """The real thing: `app.py ingest signals` killed with SIGKILL while it applies, then recovered."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    url = f"sqlite:///{tmp_path}/killed.db"
    db = Database(url)
    db.upgrade()
    load_accounts(db)
    load_signals(db, _csv(1.0, metrics=2))
    before = _values(db)
    big = tmp_path / "signals.csv"
    start = date(2020, 1, 1)
    with big.open("w") as f:  # 400,000 rows: 40 chunks, seconds of applying
        f.write("account_id,date,metric,value\n")
        for d in range(2000):
            day = start + timedelta(days=d)
            f.writelines(f"{a},{day},k{m},{d % 7}\n" for a in ("A1", "A2") for m in range(100))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "ingest", "signals", str(big)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while count(db, SignalUndo) < imports.CHUNK:  # at least one chunk applied and committed
            assert proc.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(_values(db)) > len(before)  # the damage a dead import leaves
    with db.session() as s:
        (dead,) = s.scalars(select(DataImport)).all()
    assert dead.state == "applying"
    later = dead.heartbeat_at + timedelta(minutes=3)
    (undone,) = imports.recover(db, lambda: later)
    assert undone.import_id == dead.id
    assert _values(db) == before and count(db, SignalUndo) == 0
    db.dispose()
