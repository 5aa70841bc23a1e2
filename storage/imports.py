"""Big signal imports in short write transactions, still all or nothing.

SQLite has one writer for the whole file: an import written in one transaction locks every handoff
submission and button click out for its whole run. So an import is staged first, in a TEMP table of its
own connection (private to that connection; writing it takes no lock on the database), while the file is
read and checked; a refused file has then written nothing. The checked rows are applied CHUNK rows per
transaction, each chunk saving the values it overwrites (``signal_undo``) in the same transaction; a
failure part-way puts them back. A process killed part-way leaves its ``data_imports`` row ``applying``
with a heartbeat that goes stale: ``recover`` (run before every import and when the server starts) puts
that import's rows back the same way. One import applies at a time, so undoing one never undoes another.

While an import applies (a second or so per 100,000 rows) readers can see part of it; a scan that runs
meanwhile sees each account's days as either before or after, never a torn row."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from clock import Clock
from storage.db import Database, serialize
from storage.models import DataImport, Signal, SignalUndo

log = logging.getLogger(__name__)
CHUNK = 10_000  # rows per apply transaction: tens of milliseconds on SQLite, well inside Slack's 3 s
PAUSE_MAX = 0.1  # seconds: SQLite's busy handler sleeps at most 100 ms between tries
LEASE = timedelta(minutes=2)  # an applying import whose heartbeat is older than this has died
STAGE = "signal_stage"


class ImportBusy(Exception):
    """Another signals import is being applied right now."""

    def __init__(self, started_at: datetime) -> None:
        super().__init__(
            f"another signals import (started {started_at:%Y-%m-%d %H:%M} UTC) is being applied; "
            "send this one again when it has finished"
        )


@dataclass(frozen=True)
class Recovered:
    import_id: int
    started_at: datetime
    rows: int


def create_stage(conn: Connection) -> str:
    """A TEMP table for this connection's import; returns the driver-level INSERT for its rows
    ``(day, account_id, metric, value)``. ``seq`` numbers them in file order, for chunking."""
    pg = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg else "seq INTEGER PRIMARY KEY"
    day = "DATE" if pg else "TEXT"
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {STAGE} ({seq}, day {day} NOT NULL, account_id INTEGER NOT NULL, "
        "metric VARCHAR(64) NOT NULL, value DOUBLE PRECISION NOT NULL)"
    )
    mark = "%s" if pg else "?"
    return f"INSERT INTO {STAGE} (day, account_id, metric, value) VALUES ({mark}, {mark}, {mark}, {mark})"


def drop_stage(conn: Connection) -> None:
    conn.rollback()
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.commit()


_SAVE = text(
    f"INSERT INTO signal_undo (import_id, seq, day, account_id, metric, old_value) "
    f"SELECT :import_id, s.seq, s.day, s.account_id, s.metric, g.value FROM {STAGE} s "
    "LEFT JOIN signals g ON g.day = s.day AND g.account_id = s.account_id AND g.metric = s.metric "
    "WHERE s.seq > :lo AND s.seq <= :hi"
)
_APPLY = text(
    f"INSERT INTO signals (day, account_id, metric, value) SELECT day, account_id, metric, value "
    f"FROM {STAGE} WHERE seq > :lo AND seq <= :hi "
    "ON CONFLICT (day, account_id, metric) DO UPDATE SET value = excluded.value"
)


def apply_stage(conn: Connection, db: Database, clock: Clock, rows: int) -> int:
    """Apply the staged rows CHUNK at a time; returns the import's id. Raises ImportBusy (nothing
    applied) when another import is applying; on any failure part-way, puts back what it wrote."""
    conn.commit()  # end the read transaction that staged the rows: nothing of the database is held
    import_id = _begin(db, clock, rows)
    one_writer = conn.dialect.name == "sqlite"
    try:
        for lo in range(0, rows, CHUNK):
            started = time.perf_counter()
            params = {"import_id": import_id, "lo": lo, "hi": lo + CHUNK}
            conn.execute(_SAVE, params)
            conn.execute(_APPLY, params)
            conn.execute(update(DataImport).where(DataImport.id == import_id).values(heartbeat_at=clock()))
            conn.commit()
            if one_writer:
                # SQLite's busy handler retries on a timer: back-to-back chunks would starve a waiting
                # writer (a handoff submission) for seconds. Pausing as long as the chunk took lets it in.
                time.sleep(min(PAUSE_MAX, time.perf_counter() - started))
    except BaseException:
        conn.rollback()
        _undo(db, import_id, clock)
        raise
    with db.session() as session:
        row = session.get_one(DataImport, import_id)
        row.state, row.finished_at = "done", clock()
    _forget(db, import_id)
    return import_id


def _begin(db: Database, clock: Clock, rows: int) -> int:
    with db.session() as session:
        serialize(session, "data_imports:signals")
        busy = session.scalars(
            select(DataImport).where(DataImport.kind == "signals", DataImport.state == "applying")
        ).first()
        if busy is not None:
            raise ImportBusy(busy.started_at)
        now = clock()
        row = DataImport(kind="signals", state="applying", rows=rows, started_at=now, heartbeat_at=now)
        session.add(row)
        session.flush()
        return row.id


def recover(db: Database, clock: Clock) -> list[Recovered]:
    """Put back every import whose process died while applying it (heartbeat older than LEASE), and
    clear undo rows that finished imports left behind. Safe to run from any instance at any time."""
    done: list[Recovered] = []
    with db.session() as session:
        stale = session.execute(
            select(DataImport.id, DataImport.started_at, DataImport.rows).where(
                DataImport.state == "applying", DataImport.heartbeat_at < clock() - LEASE
            )
        ).all()
        finished = session.scalars(
            select(SignalUndo.import_id)
            .join(DataImport, DataImport.id == SignalUndo.import_id)
            .where(DataImport.state != "applying")
            .distinct()
        ).all()
    for import_id, started_at, rows in stale:
        if _undo(db, import_id, clock, only_if_stale=True):
            log.warning("rolled back signals import %s, left unfinished since %s", import_id, started_at)
            done.append(Recovered(import_id, started_at, rows))
    for import_id in finished:
        _forget(db, import_id)
    return done


def _undo(db: Database, import_id: int, clock: Clock, *, only_if_stale: bool = False) -> bool:
    """Restore what ``import_id`` overwrote, CHUNK rows per transaction, last chunk first, then mark it
    rolled back. Each chunk deletes its undo rows as it restores them, so a crash here resumes here."""
    while True:
        with db.session() as session:
            serialize(session, "data_imports:signals")
            row = session.get(DataImport, import_id)
            if row is None or row.state != "applying":
                return False
            if only_if_stale and row.heartbeat_at >= clock() - LEASE:
                return False  # its owner (or another instance recovering it) is at work: not ours
            only_if_stale = False  # ours now: the heartbeat below keeps other instances off
            chunk = session.execute(
                select(
                    SignalUndo.seq,
                    SignalUndo.day,
                    SignalUndo.account_id,
                    SignalUndo.metric,
                    SignalUndo.old_value,
                )
                .where(SignalUndo.import_id == import_id)
                .order_by(SignalUndo.seq.desc())
                .limit(CHUNK)
            ).all()
            if not chunk:
                row.state, row.finished_at = "rolled_back", clock()
                return True
            _restore(session, chunk)
            session.execute(
                delete(SignalUndo).where(SignalUndo.import_id == import_id, SignalUndo.seq >= chunk[-1].seq)
            )
            row.heartbeat_at = clock()


def _restore(session: Session, chunk: Sequence[Any]) -> None:
    """Each row back to its old value, or gone if the import added it: one primary-key lookup a row."""
    conn = session.connection()
    key = (
        (Signal.day == bindparam("d"))
        & (Signal.account_id == bindparam("a"))
        & (Signal.metric == bindparam("m"))
    )
    was = [
        {"d": r.day, "a": r.account_id, "m": r.metric, "v": r.old_value}
        for r in chunk
        if r.old_value is not None
    ]
    new = [{"d": r.day, "a": r.account_id, "m": r.metric} for r in chunk if r.old_value is None]
    if was:
        conn.execute(update(Signal).where(key).values(value=bindparam("v")), was)
    if new:
        conn.execute(delete(Signal).where(key), new)


def _forget(db: Database, import_id: int) -> None:
    """Drop a finished import's undo rows, CHUNK at a time (one big DELETE would be one long write)."""
    while True:
        with db.session() as session:
            first = session.scalar(  # the lowest seq of the last CHUNK rows; None: fewer are left
                select(SignalUndo.seq)
                .where(SignalUndo.import_id == import_id)
                .order_by(SignalUndo.seq.desc())
                .offset(CHUNK - 1)
                .limit(1)
            )
            stmt = delete(SignalUndo).where(SignalUndo.import_id == import_id)
            if first is not None:
                stmt = stmt.where(SignalUndo.seq >= first)
            session.execute(stmt)
        if first is None:
            return
