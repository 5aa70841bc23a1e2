"""SQLite writers in one process take turns instead of napping in SQLite's busy handler, and writes a
person is waiting on (a Slack request before its ack) go first."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

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
