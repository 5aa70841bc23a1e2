"""Accounts files from the CLI and the API: staged on SQLite like signals (checked privately, applied in
short transactions), all or nothing even when a name is taken part-way or the process is killed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from handoff import service
from handoff.service import Actor
from ingest import Batch, IngestError, Row, import_accounts, ingest, records
from settings import Rules
from storage import Database, imports
from storage.models import Account, AccountSnapshot, AccountUndo, DataImport, Handoff
from tests.clocks import FakeClock
from tests.concurrency import write_meanwhile
from tests.handoff.test_checklist import valid_form
from tests.ingest.test_ingest import count, load_accounts

HEAD = "account_id,name,plan,mrr,seats,contract_start,renewal_date,touch_tier\n"
AS_OF = date(2026, 11, 15)


def book_file(n: int, plan: str = "Pro", start: int = 0) -> str:
    return HEAD + "".join(
        f"X{i},Customer {i},{plan},{100 + i},5,2026-01-01,2027-01-01,mid\n" for i in range(start, start + n)
    )


def state(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every account and snapshot column, to compare a database with itself before and after."""
    with db.session() as s:
        accounts = [tuple(r) for r in s.execute(select(*Account.__table__.columns).order_by(Account.id))]
        snaps = s.execute(
            select(*AccountSnapshot.__table__.columns).order_by(
                AccountSnapshot.account_id, AccountSnapshot.as_of
            )
        )
        return accounts, [tuple(r) for r in snaps]


@pytest.fixture
def book(db: Database) -> Database:
    """60 accounts on 11-01 and one born of a handoff (no account_id yet): a file updates, links, adds."""
    load_accounts(db, book_file(60), as_of=date(2026, 11, 1))
    with db.session() as s:
        form = valid_form(account_name="Customer 70")
        service.create(s, form=form, actor=Actor("U1"), clock=FakeClock(), rules=Rules.load(None))
    load_accounts(db, book_file(1, plan="Old", start=5), as_of=AS_OF)  # a snapshot the file overwrites
    return db


def _import(db: Database, body: str | Iterator[Row], clock: FakeClock | None = None, **kw: Any):
    rows = records(io.StringIO(body), "csv") if isinstance(body, str) else body
    return import_accounts(db, rows, as_of=AS_OF, clock=clock or FakeClock(), staged=True, **kw)


def test_a_staged_import_lands_whole_links_by_name_and_leaves_no_undo_rows(
    book: Database, monkeypatch
) -> None:
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 7)  # many chunks, the last one partial
    result = _import(book, book_file(80, plan="Biz"))
    assert (result.rows, result.created, result.updated, result.linked) == (80, 19, 61, 1)
    with book.session() as s:
        assert set(s.scalars(select(Account.plan))) == {"Biz"}
        assert s.scalars(select(Account.external_id).where(Account.name == "Customer 70")).one() == "X70"
        assert set(s.scalars(select(AccountSnapshot.plan).where(AccountSnapshot.as_of == AS_OF))) == {"Biz"}
        assert s.scalars(select(DataImport.state)).all() == ["done"]
    assert count(book, AccountUndo) == 0 and count(book, Account) == 80


def test_a_refused_file_writes_nothing_and_records_no_import(book: Database) -> None:
    before = state(book)
    with pytest.raises(IngestError) as err:
        _import(book, book_file(80, plan="Biz") + "X90,Bad,Pro,-5,5,2026-01-01,2027-01-01,\n")
    assert [p.line for p in err.value.problems] == [82]
    assert state(book) == before and count(book, DataImport) == 0


def test_a_repeated_account_id_in_another_batch_is_refused(db: Database, monkeypatch) -> None:
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 10)
    again = "X{},Someone else,Pro,1,1,2026-01-01,2027-01-01,\n"
    body = book_file(5) + again.format(2) + book_file(25, start=5)[len(HEAD) :] + again.format(3)
    with pytest.raises(IngestError) as err:
        _import(db, body)
    assert [(p.line, p.message) for p in err.value.problems] == [
        (7, "account_id 'X2' appears again (first on line 4)"),  # in its batch: said with its id
        (33, "the same account_id appears again (first on line 5)"),  # found from the hashes at the end
    ]
    assert count(db, Account) == 0


def test_a_slack_write_goes_through_while_an_accounts_file_is_read(book: Database, monkeypatch) -> None:
    """On today's main the accounts file was one write transaction from its first batch on: a handoff
    submitted meanwhile waited out the busy timeout. Staged, it is stored at once (both databases)."""
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 50)
    wrote: list[str] = []

    def rows() -> Iterator[Row]:
        for n, row in enumerate(records(io.StringIO(book_file(400, plan="Biz")), "csv")):
            if n == 150:  # past the first batches, which one transaction would have written by now
                write_meanwhile(book.engine, "UPDATE handoffs SET revision = revision + 1", wrote)
            yield row

    ingest(book, "accounts", rows(), Batch(FakeClock(), "Asia/Tokyo", AS_OF))  # the CLI's and the API's path
    assert wrote == ["ok"] and count(book, Account) == 400
    with book.session() as s:
        assert s.scalar(select(Handoff.revision)) == 2


def test_a_name_taken_while_the_file_applies_puts_everything_back(book: Database, monkeypatch) -> None:
    """The stage is checked against the accounts as they were; a name another account takes before its
    chunk applies refuses the file there, and the chunks already applied are undone to the row."""
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 10)
    before = state(book)
    real = imports._begin

    def begin_then_take_a_name(*args: Any, **kw: Any) -> int:
        with book.session() as s:  # after the file was checked, before its chunks apply
            s.add(Account(name="Customer 75", name_key="customer 75", external_id="CRM-9",
                          created_at=FakeClock()(), updated_at=FakeClock()()))  # fmt: skip
        before[0].append(state(book)[0][-1])
        return real(*args, **kw)

    monkeypatch.setattr(imports, "_begin", begin_then_take_a_name)
    with pytest.raises(IngestError) as err:
        _import(book, book_file(80, plan="Biz"))
    assert [(p.line, p.message) for p in err.value.problems] == [
        (77, "name 'Customer 75' is already used by account 'CRM-9'")
    ]
    assert state(book) == before  # updated, linked and created accounts and the 11-15 snapshot as they were
    with book.session() as s:
        assert s.scalars(select(DataImport.state)).all() == ["rolled_back"]
    assert count(book, AccountUndo) == 0


def _die_after(book: Database, chunks: int, clock: FakeClock, monkeypatch) -> None:
    """What kill -9 leaves: ``chunks`` chunks applied and committed, the import still ``applying``."""
    from ingest import accounts

    monkeypatch.setattr(accounts, "ACCOUNT_BATCH", 10)
    real, calls = accounts._apply_accounts, []

    def dying(*args: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) > chunks:
            raise SystemExit("killed")
        real(*args, **kw)

    monkeypatch.setattr(accounts, "_apply_accounts", dying)
    monkeypatch.setattr(imports, "_undo", lambda *a, **k: False)  # the dead do not clean up
    with pytest.raises(SystemExit):
        _import(book, book_file(80, plan="Biz"), clock)
    monkeypatch.undo()


def test_an_accounts_import_whose_process_died_is_rolled_back_to_the_row(book: Database, monkeypatch) -> None:
    before = state(book)
    clock = FakeClock()
    _die_after(book, 7, clock, monkeypatch)  # 70 rows: updates, the 11-15 snapshot, the link, new accounts
    assert state(book) != before and count(book, Account) == 71
    assert imports.recover(book, clock) == []  # within its lease the owner may still be alive
    clock.advance(minutes=3)
    (undone,) = imports.recover(book, clock)
    assert (undone.kind, undone.rows) == ("accounts", 80)
    assert state(book) == before and count(book, AccountUndo) == 0


def test_an_accounts_import_waits_for_a_live_signals_import_and_recovers_a_dead_one(
    book: Database, monkeypatch
) -> None:
    clock = FakeClock()
    _die_after(book, 2, clock, monkeypatch)
    with pytest.raises(imports.ImportBusy, match=r"another accounts import .* is being applied"):
        _import(book, book_file(3, plan="Biz"), clock)
    clock.advance(minutes=3)
    result = _import(book, book_file(3, plan="Biz"), clock)
    assert [(r.kind, r.rows) for r in result.details["recovered"]] == [("accounts", 80)]
    with book.session() as s:
        assert sorted(s.scalars(select(Account.plan)).all()).count("Biz") == 3


def test_kill_9_mid_accounts_import_leaves_nothing_once_recovered(tmp_path) -> None:
    """The real thing: `app.py ingest accounts` killed with SIGKILL while it applies, then recovered."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    url = f"sqlite:///{tmp_path}/killed.db"
    db = Database(url)
    db.upgrade()
    load_accounts(db, book_file(500), as_of=date(2026, 11, 1))
    before = state(db)
    big = tmp_path / "accounts.csv"
    big.write_text(book_file(60_000, plan="Biz"))  # 30 chunks of 2,000: seconds of applying
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "ingest", "accounts", str(big), "--as-of", "2026-11-15"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while count(db, AccountUndo) < 1:  # at least one chunk applied and committed
            assert proc.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert state(db) != before  # the damage a dead import leaves
    with db.session() as s:
        (dead,) = s.scalars(select(DataImport)).all()
    assert (dead.kind, dead.state) == ("accounts", "applying")
    later = dead.heartbeat_at + timedelta(minutes=3)
    (undone,) = imports.recover(db, lambda: later)
    assert undone.import_id == dead.id
    assert state(db) == before and count(db, AccountUndo) == 0
    db.dispose()


def test_the_cli_says_it_rolled_back_an_accounts_import_a_crash_left(
    book: Database, monkeypatch, tmp_path, capsys
) -> None:
    from alerts.cli import ingest_file
    from cli import words

    clock = FakeClock()
    _die_after(book, 2, clock, monkeypatch)
    clock.advance(minutes=3)
    path = tmp_path / "accounts.csv"
    path.write_text(book_file(3, plan="Biz"))
    assert ingest_file(book, "accounts", path, as_of=AS_OF, fmt=None, clock=clock, tr=words("ja")) == 0
    assert "途中で止まっていた取り込み（顧客80社分）を取り消しました。" in capsys.readouterr().out
    assert ingest_file(book, "accounts", path, as_of=AS_OF, fmt=None, clock=clock, tr=words("en")) == 0
    assert "rolled back" not in capsys.readouterr().out  # once only


def test_an_account_the_dead_import_created_is_kept_if_a_handoff_came_to_use_it(
    book: Database, monkeypatch
) -> None:
    """Deleting it would break the handoff (and stop every later recovery on the foreign key): it stays,
    as if the handoff had created it, without the file's account_id."""
    before = state(book)
    clock = FakeClock()
    _die_after(book, 7, clock, monkeypatch)  # X60 to X69 were created
    with book.session() as s:
        form = valid_form(account_name="Customer 65")
        service.create(s, form=form, actor=Actor("U1"), clock=clock, rules=Rules.load(None))
    clock.advance(minutes=3)
    assert len(imports.recover(book, clock)) == 1
    accounts, snapshots = state(book)
    kept = [a for a in accounts if a not in before[0]]
    assert len(kept) == 1 and kept[0][1] == "Customer 65"
    with book.session() as s:
        account = s.scalars(select(Account).where(Account.name == "Customer 65")).one()
        assert account.external_id is None and len(account.handoffs) == 1
        assert s.scalars(select(DataImport.state)).all() == ["rolled_back"]
    assert snapshots == before[1] and count(book, Account) == len(before[0]) + 1
