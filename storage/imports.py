"""Big imports (signals and accounts files) in short write transactions, still all or nothing.

SQLite has one writer for the whole file: an import written in one transaction locks every handoff
submission and button click out for its whole run. So an import is staged first, in a TEMP table of its
own connection (private to that connection; writing it takes no lock on the database), while the file is
read and checked; a refused file has then written nothing. The checked rows are applied CHUNK rows per
transaction, each chunk saving the values it overwrites (``signal_undo``) in the same transaction; a
failure part-way puts them back. A process killed part-way leaves its ``data_imports`` row ``applying``
with a heartbeat that goes stale: ``recover`` (run before every import and when the server starts) puts
that import's rows back the same way. One import applies at a time, whatever its kind, so undoing one
never undoes another (an accounts import undone deletes the accounts it created, which a signals import
applying meanwhile could have written to).

The chunk loop, heartbeat, pause, recovery and undo loop are shared by every kind; a kind brings how a
chunk is applied (with its undo rows saved in the chunk's transaction) and how an undo row is put back
(``KINDS``): signals here, accounts in ingest/writers.py.

While an import applies (a second or so per 100,000 rows) readers can see part of it; a scan that runs
meanwhile sees each account's days as either before or after, never a torn row."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, text, update
from sqlalchemy.orm import Session

from clock import Clock
from storage.db import Database, serialize
from storage.models import Account, AccountSnapshot, AccountUndo, DataImport, Signal, SignalUndo

log = logging.getLogger(__name__)
CHUNK = 10_000  # rows per apply transaction: tens of milliseconds on SQLite, well inside Slack's 3 s
PAUSE_MAX = 0.1  # seconds: SQLite's busy handler sleeps at most 100 ms between tries
LEASE = timedelta(minutes=2)  # an applying import whose heartbeat is older than this has died
STAGE = "signal_stage"
ACCOUNT_STAGE = "account_stage"
_LOCK = "data_imports"  # one import applies at a time, whatever its kind

# Applies staged rows ``lo < seq <= hi`` in the connection's transaction, saving what they overwrite as
# undo rows of ``import_id`` in that same transaction. One that reads before it writes takes the write
# lock (storage.db.serialize) after its reads and before its first write: on SQLite it then holds the
# lock only while it writes, and never writes over a snapshot another writer made stale.
ApplyChunk = Callable[[Connection, int, int, int], None]


class ImportBusy(Exception):
    """Another import is being applied right now."""

    def __init__(self, started_at: datetime, kind: str = "signals") -> None:
        super().__init__(
            f"another {kind} import (started {started_at:%Y-%m-%d %H:%M} UTC) is being applied; "
            "send this one again when it has finished"
        )


@dataclass(frozen=True)
class Recovered:
    import_id: int
    started_at: datetime
    rows: int
    kind: str = "signals"


def _new_stage(conn: Connection, name: str, columns: str) -> str:
    """A TEMP table ``name`` of this connection, ``seq`` numbering its rows in file order (for
    chunking), then ``columns``; returns the placeholder mark of the driver (``?`` or ``%s``)."""
    pg = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg else "seq INTEGER PRIMARY KEY"
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({seq}, {columns})")
    return "%s" if pg else "?"


def create_stage(conn: Connection) -> str:
    """The signals stage; returns the driver-level INSERT for rows ``(day, account_id, metric, value)``."""
    day = "DATE" if conn.dialect.name == "postgresql" else "TEXT"
    mark = _new_stage(
        conn,
        STAGE,
        f"day {day} NOT NULL, account_id INTEGER NOT NULL, metric VARCHAR(64) NOT NULL, "
        "value DOUBLE PRECISION NOT NULL",
    )
    return f"INSERT INTO {STAGE} (day, account_id, metric, value) VALUES ({mark}, {mark}, {mark}, {mark})"


def create_account_stage(conn: Connection) -> str:
    """The accounts stage: each checked row as JSON with its line; returns the INSERT for ``(line, data)``."""
    mark = _new_stage(conn, ACCOUNT_STAGE, "line INTEGER NOT NULL, data TEXT NOT NULL")
    return f"INSERT INTO {ACCOUNT_STAGE} (line, data) VALUES ({mark}, {mark})"


def drop_stage(conn: Connection, name: str = STAGE) -> None:
    conn.rollback()
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
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


def _apply_signals(conn: Connection, import_id: int, lo: int, hi: int) -> None:
    params = {"import_id": import_id, "lo": lo, "hi": hi}
    conn.execute(_SAVE, params)
    conn.execute(_APPLY, params)


def apply_stage(
    conn: Connection,
    db: Database,
    clock: Clock,
    rows: int,
    *,
    kind: str = "signals",
    apply: ApplyChunk = _apply_signals,
    chunk: int | None = None,
) -> int:
    """Apply the staged rows ``chunk`` (default CHUNK) at a time; returns the import's id. Raises
    ImportBusy (nothing applied) when another import is applying; on any failure part-way (an
    IngestError from ``apply`` included), puts back what it wrote and raises it."""
    size = chunk or CHUNK
    conn.commit()  # end the read transaction that staged the rows: nothing of the database is held
    import_id = _begin(db, clock, rows, kind)
    one_writer = conn.dialect.name == "sqlite"
    try:
        for lo in range(0, rows, size):
            started = time.perf_counter()
            apply(conn, import_id, lo, lo + size)
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


def _begin(db: Database, clock: Clock, rows: int, kind: str) -> int:
    with db.session() as session:
        serialize(session, _LOCK)
        busy = session.scalars(select(DataImport).where(DataImport.state == "applying")).first()
        if busy is not None:
            raise ImportBusy(busy.started_at, busy.kind)
        now = clock()
        row = DataImport(kind=kind, state="applying", rows=rows, started_at=now, heartbeat_at=now)
        session.add(row)
        session.flush()
        return row.id


def recover(db: Database, clock: Clock) -> list[Recovered]:
    """Put back every import whose process died while applying it (heartbeat older than LEASE), and
    clear undo rows that finished imports left behind. Safe to run from any instance at any time."""
    done: list[Recovered] = []
    with db.session() as session:
        stale = session.execute(
            select(DataImport.id, DataImport.started_at, DataImport.rows, DataImport.kind).where(
                DataImport.state == "applying", DataImport.heartbeat_at < clock() - LEASE
            )
        ).all()
        finished = {
            import_id
            for kind in KINDS.values()
            for import_id in session.scalars(
                select(kind.model.import_id)
                .join(DataImport, DataImport.id == kind.model.import_id)
                .where(DataImport.state != "applying")
                .distinct()
            )
        }
    for import_id, started_at, rows, kind in stale:
        if _undo(db, import_id, clock, only_if_stale=True):
            log.warning("rolled back %s import %s, left unfinished since %s", kind, import_id, started_at)
            done.append(Recovered(import_id, started_at, rows, kind))
    for import_id in sorted(finished):
        _forget(db, import_id)
    return done


def _undo(db: Database, import_id: int, clock: Clock, *, only_if_stale: bool = False) -> bool:
    """Restore what ``import_id`` overwrote, CHUNK rows per transaction, last chunk first, then mark it
    rolled back. Each chunk deletes its undo rows as it restores them, so a crash here resumes here."""
    while True:
        with db.session() as session:
            serialize(session, _LOCK)
            row = session.get(DataImport, import_id)
            if row is None or row.state != "applying":
                return False
            if only_if_stale and row.heartbeat_at >= clock() - LEASE:
                return False  # its owner (or another instance recovering it) is at work: not ours
            only_if_stale = False  # ours now: the heartbeat below keeps other instances off
            kind = KINDS[row.kind]
            chunk = session.execute(  # rows, not objects: a chunk is 10,000 of them
                select(*kind.model.__table__.columns)
                .where(kind.model.import_id == import_id)
                .order_by(kind.model.seq.desc())
                .limit(CHUNK)
            ).all()
            if not chunk:
                row.state, row.finished_at = "rolled_back", clock()
                return True
            kind.restore(session, chunk)
            session.execute(
                delete(kind.model).where(kind.model.import_id == import_id, kind.model.seq >= chunk[-1].seq)
            )
            row.heartbeat_at = clock()


def _restore_signals(session: Session, chunk: Sequence[Any]) -> None:
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


def _restore_accounts(session: Session, chunk: Sequence[Any]) -> None:
    """Each account as it was, last row first (a name one row freed and a later one took goes back in
    order): its snapshot of that day back (or gone), then the account back (or gone if it was new)."""
    kept = _referenced(session, [r.account_id for r in chunk if r.created])
    for r in chunk:
        session.execute(
            delete(AccountSnapshot).where(
                AccountSnapshot.account_id == r.account_id, AccountSnapshot.as_of == r.as_of
            )
        )
        if r.old_snapshot is not None:
            snapshot = from_json(AccountSnapshot.__table__, r.old_snapshot)
            session.execute(insert(AccountSnapshot).values(snapshot))
        if r.created and r.account_id in kept:
            # Something came to point at it meanwhile (a handoff linked by name, a pulled signal): keep
            # the account for it, as if that had created it, without the file's account_id.
            session.execute(update(Account).where(Account.id == r.account_id).values(external_id=None))
        elif r.created:
            session.execute(delete(Account).where(Account.id == r.account_id))
        elif r.old_account is not None:
            values = from_json(Account.__table__, r.old_account)
            session.execute(update(Account).where(Account.id == r.account_id).values(values))


def _referenced(session: Session, ids: list[int]) -> set[int]:
    """Which of the accounts ``ids`` a row of another table points at (snapshots aside: they go with it)."""
    found: set[int] = set()
    if not ids:
        return found
    for table in Account.metadata.sorted_tables:
        if table is AccountSnapshot.__table__:
            continue
        for fk in table.foreign_keys:
            if fk.column is Account.__table__.c.id:
                found.update(session.scalars(select(fk.parent).where(fk.parent.in_(ids)).distinct()))
    return found


def to_json(table: Table, values: Any) -> dict[str, Any]:
    """A row's columns (from an ORM object or a mapping) as JSON values, for an undo row."""
    get = values.get if isinstance(values, dict) else lambda k: getattr(values, k)
    out: dict[str, Any] = {}
    for column in table.columns:
        value = get(column.key)
        out[column.key] = str(value) if isinstance(value, (date, datetime, Decimal)) else value
    return out


def from_json(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    """``to_json``'s values back in their columns' Python types."""
    out: dict[str, Any] = {}
    for column in table.columns:
        value = data.get(column.key)
        if value is not None and isinstance(value, str):
            kind = getattr(column.type, "impl", column.type).python_type  # a TypeDecorator: its impl's
            if kind is datetime:
                value = datetime.fromisoformat(value)
            elif kind is date:
                value = date.fromisoformat(value)
            elif kind is Decimal:
                value = Decimal(value)
        out[column.key] = value
    return out


def _forget(db: Database, import_id: int) -> None:
    """Drop a finished import's undo rows, CHUNK at a time (one big DELETE would be one long write)."""
    for kind in KINDS.values():
        model = kind.model
        while True:
            with db.session() as session:
                first = session.scalar(  # the lowest seq of the last CHUNK rows; None: fewer are left
                    select(model.seq)
                    .where(model.import_id == import_id)
                    .order_by(model.seq.desc())
                    .offset(CHUNK - 1)
                    .limit(1)
                )
                stmt = delete(model).where(model.import_id == import_id)
                if first is not None:
                    stmt = stmt.where(model.seq >= first)
                session.execute(stmt)
            if first is None:
                break


@dataclass(frozen=True)
class Kind:
    """What one kind of import saves before it writes, and how a saved row is put back."""

    model: Any  # the undo table's model, keyed (import_id, seq)
    restore: Callable[[Session, Sequence[Any]], None]  # a chunk of undo rows, highest seq first


KINDS = {"signals": Kind(SignalUndo, _restore_signals), "accounts": Kind(AccountUndo, _restore_accounts)}
