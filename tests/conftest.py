"""Shared fixtures. Database tests run on SQLite and, when BATON_TEST_PG_URL is set (scripts/test sets
it, starting a throwaway server), on PostgreSQL too. In CI the PostgreSQL run is mandatory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import Database
from storage.models import Base

PG_URL = os.environ.get("BATON_TEST_PG_URL", "")
BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and not PG_URL:
        raise pytest.UsageError("CI=true but BATON_TEST_PG_URL is unset: run the suite with scripts/test")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[Database]:
    db = Database(PG_URL)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade()
    yield db
    db.dispose()


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
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield database
