"""Shared fixtures. Database tests run on SQLite and, when BATON_TEST_PG_URL is set (scripts/test sets
it, starting a throwaway server), on PostgreSQL too. In CI the PostgreSQL run is mandatory."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from storage import Database
from storage.models import Base

PG_URL = os.environ.get("BATON_TEST_PG_URL", "")
# scripts/test's day-boundary passes set "sqlite": faketime fakes this process's clock, which SQLite
# reads too, while PostgreSQL's server keeps the real one; the Python side is the same code on both
BACKENDS = os.environ.get("BATON_TEST_BACKENDS", "sqlite,postgresql").split(",")
# pytest-xdist's worker name ("gw0", ...): each worker gets databases of its own on the shared server.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def fresh_pg_database(name: str) -> Database:
    """A new, empty database ``name`` (suffixed with this worker's name under xdist) on PG_URL's server."""
    server = PG_URL.rsplit("/", 1)[0]
    name = f"{name}_{WORKER}" if WORKER else name
    admin = Database(server + "/postgres")
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return Database(f"{server}/{name}")


def pytest_configure(config: pytest.Config) -> None:
    if unknown := set(BACKENDS) - {"sqlite", "postgresql"}:
        raise pytest.UsageError(f"BATON_TEST_BACKENDS: unknown {sorted(unknown)}; use sqlite,postgresql")
    if os.environ.get("CI") == "true" and not PG_URL:
        raise pytest.UsageError("CI=true but BATON_TEST_PG_URL is unset: run the suite with scripts/test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist the serial tests are skipped, never run beside others: scripts/test runs them alone.
    A test marked ``one_database`` runs on the first backend only (SQLite, unless
    BATON_TEST_BACKENDS says otherwise): what it tests is an algorithm or a drawing, the database only
    holds its book, and the storage it goes through is tested on both by others."""
    keep, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("db") if params else None
        if backend and backend != BACKENDS[0] and item.get_closest_marker("one_database"):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if not WORKER:
        return
    alone = pytest.mark.skip(reason="restarts the shared server: run without -n (scripts/test does, after)")
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(alone)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[Database]:
    if WORKER:  # workers run at once: one database each, so their TRUNCATEs do not meet
        db = fresh_pg_database("baton")
    else:
        db = Database(PG_URL)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade()
    yield db
    db.dispose()


def _no_transaction_left_open(database: Database, wait_seconds: float = 10.0) -> None:
    """Fails when a session an earlier test on this worker left open is still in a transaction (a
    read after its ``with`` block closed it, a thread not joined): waited for a moment, since a thread
    the test stopped may still be finishing, then named by its last statement."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with database.engine.connect() as conn:  # a new transaction each time: a fresh view of the stats
            left = (
                conn.execute(
                    text(
                        "SELECT left(query, 120) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                    )
                )
                .scalars()
                .all()
            )
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"an earlier test on this worker left a transaction open: {left}")
        time.sleep(0.05)


def _empty(conn: Connection) -> None:
    """Every table emptied and every id counting from 1 again, as TRUNCATE ... RESTART IDENTITY does. A
    DELETE per table (children first) and one setval: on the few rows a test leaves this takes ~4 ms,
    where TRUNCATE gives each of the tables and indexes a new file (~30-40 ms, per PostgreSQL test)."""
    for table in reversed(Base.metadata.sorted_tables):
        conn.execute(table.delete())
    sequences = conn.execute(
        text("SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences")
    ).scalars()
    resets = [f"setval('{name}', 1, false)" for name in sequences]
    if resets:
        conn.execute(text("SELECT " + ", ".join(resets)))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "baton.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured (BATON_TEST_PG_URL); scripts/test provides one")
    database = request.getfixturevalue("_pg_database")
    _no_transaction_left_open(database)
    with database.engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '30s'"))  # rows still locked: fail, never hang
        try:
            _empty(conn)
        except OperationalError as exc:
            raise AssertionError(f"an earlier test on this worker left a transaction open: {exc}") from exc
    yield database
