"""Engine and unit of work. One ``session()`` per Slack request, CLI command or job."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

log = logging.getLogger(__name__)
T = TypeVar("T")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works; every Baton instance uses the same one so only one migrates at a time.
_MIGRATION_LOCK_KEY = 0x42A70


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.close()


def serialize(session: Session, name: str) -> None:
    """Make the rest of this transaction run alone among those that serialize on ``name``: a
    check-then-insert (is this touch already recorded?) cannot then race a retried request doing the
    same. PostgreSQL: a transaction-scoped advisory lock. SQLite: take the database's write lock now
    (a write that changes nothing), so a second writer waits here, before its check, not after."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(name.encode())})
    else:
        session.execute(text("UPDATE accounts SET id = id WHERE 0"))


BUSY_TIMEOUT_MS = 5000  # how long a write waits for SQLite's lock before "database is locked"
POLL_SECONDS = 0.002  # how often the writer whose turn it is asks for a lock another process holds
WAIT_MAX_SECONDS = 10.0  # a writer waits this long for its turn, then lets SQLite's own lock decide
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")
# the table a write goes to, and a TEMP table created (writes to it take no lock on the database file)
_TARGET = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+[\"`]?(\w+)", re.I
)
_TEMP = re.compile(r"^\s*CREATE\s+TEMP(?:ORARY)?\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"`]?(\w+)", re.I)
_thread = threading.local()


def writes_first(on: bool) -> None:
    """Mark this thread's SQLite writes as ones a person is waiting on (a Slack request not yet
    acknowledged): they take the next turn before writes nobody waits on (deliveries, jobs)."""
    _thread.urgent = on


class WriteTurns:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in SQLite's busy
    handler in naps of up to 100 ms: 50 handoff submissions at once convoyed for 2 s while the lock sat
    free most of the time (profiled: 80% of each submission's time was spent in those naps). Writers in
    this process take turns here instead and are woken the moment the last one ends its transaction;
    ``writes_first`` writers go ahead of the rest. This only schedules: after ``WAIT_MAX_SECONDS`` a
    writer goes on anyway and SQLite's lock and busy timeout decide, as they do against other
    processes (an import from the CLI)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: int | None = None
        self._urgent = 0  # urgent writers waiting
        self.waiting = 0  # all writers waiting

    def take(self) -> bool:
        """Wait for this thread's turn; False when it did not take one (it holds it already on another
        connection, or waited too long), so there is nothing to give back."""
        me, urgent = threading.get_ident(), getattr(_thread, "urgent", False)
        deadline = time.monotonic() + WAIT_MAX_SECONDS
        with self._cond:
            if self._holder == me:
                return False
            self._urgent += urgent
            self.waiting += 1
            try:
                while self._holder is not None or (not urgent and self._urgent):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._urgent -= urgent
                self.waiting -= 1
            self._holder = me
            return True

    def give_back(self) -> None:
        with self._cond:
            self._holder = None
            self._cond.notify_all()


class _TurnCursor(sqlite3.Cursor):
    connection: _TurnConnection

    def execute(self, sql: str, parameters: Any = (), /) -> _TurnCursor:
        return self._run(super().execute, sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> _TurnCursor:
        return self._run(super().executemany, sql, seq)

    def _run(self, run: Callable[[str, Any], Any], sql: str, parameters: Any) -> Any:
        try:
            if not self.connection._before(sql):
                return run(sql, parameters)
            return self._first_write(run, sql, parameters)
        finally:
            self.connection._after()

    def _first_write(self, run: Callable[[str, Any], Any], sql: str, parameters: Any) -> Any:
        """The statement that opens this turn's write transaction. Another process (an import from the
        CLI) may hold SQLite's lock: ask every POLL_SECONDS, not on the busy handler's timer (naps of up
        to 100 ms, longer than an import's pause between chunks), for the same BUSY_TIMEOUT_MS. Retrying
        is safe: a statement refused the lock has written nothing and holds no snapshot."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        # a plain cursor: not this one, whose results (RETURNING rows) must stay, nor one that takes turns
        busy = sqlite3.Cursor(self.connection)
        busy.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                try:
                    return run(sql, parameters)
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(POLL_SECONDS)
        finally:
            busy.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            busy.close()


class _TurnConnection(sqlite3.Connection):
    """A SQLite connection that takes a turn from its ``WriteTurns`` before the statement that opens a
    write transaction and gives it back when the transaction ends (commit, rollback or autocommit)."""

    turns: WriteTurns
    _holds = False

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        return super().cursor(factory or _TurnCursor)

    def _before(self, sql: str) -> bool:
        """Take a turn if ``sql`` opens a write transaction; True when it did. Writes to this
        connection's own TEMP tables (an import's staging) take none: they lock nothing shared."""
        if self._holds or not sql.lstrip()[:7].upper().startswith(_WRITES):
            if temp := _TEMP.match(sql):
                self._temp = {*getattr(self, "_temp", ()), temp.group(1).lower()}
            return False
        target = _TARGET.match(sql)
        if target and target.group(1).lower() in getattr(self, "_temp", ()):
            return False
        self._holds = self.turns.take()
        return self._holds

    def _after(self) -> None:
        if self._holds and not self.in_transaction:
            self._holds = False
            self.turns.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._after()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._after()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._holds:
                self._holds = False
                self.turns.give_back()


_turns: dict[str, WriteTurns] = {}
_turns_lock = threading.Lock()


def _connection_class(url: str) -> type[_TurnConnection]:
    """One ``WriteTurns`` per database file in this process, however many engines open it."""
    with _turns_lock:
        turns = _turns.setdefault(url, WriteTurns())
    return type("TurnConnection", (_TurnConnection,), {"turns": turns})


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        # Pools sized for the listener threads, so connections are reused rather than opened per request
        # (profiling showed connect + PRAGMAs per request under load with the default pool of 5).
        # hide_parameters: errors and echo logs show the SQL, never its values (names, emails of customers).
        kwargs: dict[str, object] = {
            "echo": echo,
            "pool_size": 20,
            "max_overflow": 40,
            "hide_parameters": True,
        }
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "factory": _connection_class(url)}
        else:
            kwargs["pool_pre_ping"] = True  # a file cannot drop a connection; a server can
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def run(self, work: Callable[[Session], T], *, attempts: int = 3) -> T:
        """``work`` in its own unit of work, retried when an optimistic-lock check finds that another
        request changed the same row first (two people clicking Accept at once)."""
        for attempt in range(attempts):
            try:
                with self.session() as session:
                    return work(session)
            except StaleDataError:
                if attempt == attempts - 1:
                    raise
                log.info("concurrent update detected; retrying (%d)", attempt + 1)
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("database ping failed", exc_info=True)
            return False

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations; on PostgreSQL under an advisory lock, so instances starting together queue."""
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def downgrade(self, revision: str) -> None:
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()
