"""SQLite writers in one process take turns instead of napping in SQLite's busy handler, and writes a
person is waiting on (a Slack request before its ack) go first."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import Database
from storage.db import WriteTurns, _turns, writes_first
from storage.models import Account

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def _account(name: str) -> Account:
    return Account(name=name, name_key=name.lower(), created_at=NOW, updated_at=NOW)


def test_a_write_transaction_holds_a_turn_until_it_commits_or_rolls_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    db = Database(url)
    db.upgrade()
    turns = _turns[url]
    with db.session() as s:
        s.execute(text("SELECT 1"))
        assert turns._holder is None  # reads take no turn
        s.add(_account("Acme"))
        s.flush()
        assert turns._holder == threading.get_ident()
    assert turns._holder is None  # committed: the next writer is woken
    try:
        with db.session() as s:
            s.add(_account("Beta"))
            s.flush()
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    assert turns._holder is None  # rolled back: given back too
    db.dispose()


def _until(check: object) -> None:
    for _ in range(5000):
        if check():  # type: ignore[operator]
            return
        threading.Event().wait(0.001)
    raise AssertionError("timed out")


def test_urgent_writers_go_before_writers_nobody_waits_on() -> None:
    turns = WriteTurns()
    assert turns.take()  # held, as by a delivery's transaction
    order: list[str] = []

    def writer(name: str, urgent: bool) -> None:
        writes_first(urgent)
        assert turns.take()
        order.append(name)
        turns.give_back()

    background = threading.Thread(target=writer, args=("background", False))
    background.start()
    _until(lambda: turns.waiting == 1)  # the background writer queued first
    urgent = threading.Thread(target=writer, args=("urgent", True))
    urgent.start()
    _until(lambda: turns.waiting == 2)
    turns.give_back()
    background.join(5)
    urgent.join(5)
    assert order == ["urgent", "background"]


def test_a_thread_that_holds_the_turn_is_not_made_to_wait_for_itself() -> None:
    turns = WriteTurns()
    assert turns.take()
    assert turns.take() is False  # a second connection on the same thread: SQLite decides, as before
    turns.give_back()
    assert turns._holder is None


def _other_process_holds_the_lock(path: Path, seconds: float) -> threading.Thread:
    """A plain sqlite3 connection (as the CLI's import would have) holding the write lock a while."""
    import sqlite3

    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        threading.Event().wait(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread


def test_the_writer_whose_turn_it_is_gets_the_lock_once_another_process_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    holder = _other_process_holds_the_lock(path, 0.2)
    with db.session() as s:
        account = _account("Acme")
        s.add(account)
        s.flush()  # waits for the lock, then inserts: the id comes back (RETURNING rows kept)
        assert account.id is not None
        timeout = s.execute(text("PRAGMA busy_timeout")).scalar()
    holder.join(5)
    assert timeout == 5000  # put back for every other statement
    with db.session() as s:
        assert s.get(Account, account.id) is not None
    db.dispose()


def test_a_lock_held_past_the_busy_timeout_still_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.db

    monkeypatch.setattr(storage.db, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "held.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    holder = _other_process_holds_the_lock(path, 1.0)
    with pytest.raises(OperationalError, match="locked"), db.session() as s:
        s.add(_account("Acme"))
        s.flush()
    holder.join(5)
    db.dispose()


def test_writes_to_a_connections_own_temp_table_take_no_turn(tmp_path: Path) -> None:
    """An import stages the file in a TEMP table: that locks nothing a Slack request needs."""
    url = f"sqlite:///{tmp_path / 'temp.db'}"
    db = Database(url)
    db.upgrade()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE staged (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO staged (x) VALUES (1)")
        assert _turns[url]._holder is None
        conn.exec_driver_sql("UPDATE accounts SET id = id WHERE 0")  # the database file: a turn
        assert _turns[url]._holder == threading.get_ident()
        conn.commit()
    assert _turns[url]._holder is None
    db.dispose()
