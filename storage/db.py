"""Engine and unit of work. One ``session()`` per Slack request, CLI command or job."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

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
    cur.execute("PRAGMA busy_timeout=5000")
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
            kwargs["connect_args"] = {"check_same_thread": False}
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
