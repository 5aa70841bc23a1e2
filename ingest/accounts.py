"""Accounts files: each row checked, then the accounts upserted by account_id with a snapshot of how each
stood on the file's ``as_of`` (the history churn and NRR read).

``ingest_accounts`` writes in the caller's transaction (PostgreSQL's path, the demo, tests);
``import_accounts`` is the CLI's and the API's on SQLite, where one writer locks the whole database: the
file is checked into a private stage (nothing written, no lock held) and applied APPLY_CHUNK rows per
short transaction by storage/imports.py, each saving the accounts and snapshots it overwrites, so a
crash or a refusal part-way (a name another account took meanwhile) puts everything back. Memory holds
one batch and the file's account ids, never the file."""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.orm import Session

from accounts.names import NAME_MAX, clean_name, name_problems, normalize_name
from clock import Clock
from handoff.checklist import AMOUNT_MAX
from ingest.readers import (
    ACCOUNT_OPTIONAL,
    ACCOUNT_REQUIRED,
    Collector,
    IngestError,
    Problem,
    Records,
    Result,
    Row,
    date_of,
    report_repeats,
    text_of,
)
from ingest.values import check_window, currencies_for, date_window, parse_amount, parse_count
from storage import imports
from storage.db import Database, serialize
from storage.limits import describe, int_range, text_problem
from storage.models import Account, AccountSnapshot, AccountUndo, Handoff

TIERS = ("high", "mid", "tech")
ACCOUNT_BATCH = 2000  # rows per batch: its accounts are looked up with IN lists of this size
APPLY_CHUNK = 500  # rows per apply transaction (SQLite): about 0.1 s alone, 0.4 s on 2 busy CPUs
AS_OF_PAST_YEARS, AS_OF_FUTURE_DAYS = 10, 31  # a far-future as_of would stay latest and freeze every account
CONTRACT_PAST_YEARS, CONTRACT_FUTURE_DAYS = 50, 20 * 366  # older dates are typos (year 1), not history
SEATS_MAX = min(int_range(Account.seats)[1], int_range(AccountSnapshot.seats)[1])
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_SNAPSHOT = ("plan", "mrr", "seats", "currency", "status", "renewal_date")  # renewal: the model's history
_DATES = ("contract_start", "renewal_date", "churned_on")
_ACCOUNTS, _SNAPSHOTS = Account.__table__, AccountSnapshot.__table__


def _amount(rec: dict[str, Any]) -> tuple[Decimal, str | None]:
    try:
        mrr, symbol = parse_amount(text_of(rec, "mrr"))
        if mrr < 0 or mrr >= AMOUNT_MAX or mrr.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError
    except ValueError:
        raise ValueError(
            f"mrr {rec['mrr']!r} is not an amount >= 0 with at most 2 decimals (120000, ¥120,000, 120,000円)"
        ) from None
    return mrr, symbol


def _seats(rec: dict[str, Any]) -> int:
    try:
        seats = parse_count(text_of(rec, "seats"))
        if not 0 <= seats <= SEATS_MAX:
            raise ValueError
    except ValueError:
        raise ValueError(f"seats {rec['seats']!r} is not a whole number from 0 to {SEATS_MAX:,}") from None
    return seats


def _contract(rec: dict[str, Any], window: tuple[date, date]) -> dict[str, Any]:
    start = check_window(date_of(text_of(rec, "contract_start"), "contract_start"), window, "contract_start")
    renewal = check_window(date_of(text_of(rec, "renewal_date"), "renewal_date"), window, "renewal_date")
    if renewal <= start:
        raise ValueError("renewal_date must be after contract_start")
    status = (text_of(rec, "status") or "active").lower()
    if status not in ("active", "churned"):
        raise ValueError(f"status {status!r}: use active or churned")
    churned = text_of(rec, "churned_on")
    churned_on = check_window(date_of(churned, "churned_on"), window, "churned_on") if churned else None
    return {
        "contract_start": start,
        "renewal_date": renewal,
        "status": status,
        "churned_on": churned_on if status == "churned" else None,
    }


def _currency(rec: dict[str, Any], symbol: str | None) -> str:
    currency = text_of(rec, "currency").upper() or (currencies_for(symbol)[0] if symbol else "JPY")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a 3-letter code")
    if symbol and currency not in currencies_for(symbol):
        raise ValueError(f"mrr {rec['mrr']!r} is not in {currency}, the row's currency")
    return currency


def _texts(rec: dict[str, Any]) -> tuple[str, str | None]:
    """The name (cleaned) and csm_email; every text longer than its column refuses the row, since
    cutting it would merge two accounts (account_id) or change them without a word."""
    email = text_of(rec, "csm_email") or None
    if email and not _EMAIL.match(email):
        raise ValueError(f"csm_email {email!r} is not an email address")
    name = clean_name(text_of(rec, "name"))
    problems = [
        f"{what} {describe(problem)}"
        for what, value, attr in (
            ("account_id", text_of(rec, "account_id"), Account.external_id),
            ("plan", text_of(rec, "plan"), Account.plan),
            ("segment", text_of(rec, "segment"), Account.segment),
            ("csm_email", email or "", Account.csm_email),
        )
        if (problem := text_problem(value, attr))
    ]
    if problem := name_problems(name):
        problems.insert(0, f"name {describe(problem)}{' once normalized' if len(name) <= NAME_MAX else ''}")
    if problems:
        raise ValueError("; ".join(problems))
    return name, email


def _account_row(rec: dict[str, Any], window: tuple[date, date]) -> dict[str, Any]:
    """One line as the account's new values; ValueError with the reason if any is wrong."""
    missing = [f for f in ACCOUNT_REQUIRED if text_of(rec, f) == ""]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    mrr, symbol = _amount(rec)
    seats = _seats(rec)
    contract = _contract(rec, window)
    currency = _currency(rec, symbol)
    name, email = _texts(rec)
    tier = text_of(rec, "touch_tier").lower()
    if tier and tier not in TIERS:
        raise ValueError(f"touch_tier {tier!r}: use high, mid or tech (or leave it empty)")
    return {
        **({"touch_tier": tier} if tier else {}),  # empty: keep the current tier
        "external_id": text_of(rec, "account_id"),
        "name": name,
        "plan": text_of(rec, "plan"),
        "mrr": mrr,
        "seats": seats,
        **contract,
        "currency": currency,
        "segment": text_of(rec, "segment") or None,
        "csm_email": email,
    }


def _checked(
    rows: Records | Iterable[Row], as_of: date, today: date, bad: Collector
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each good row while the file has no bad line; past the first bad one, the rest is still read (and
    checked) only to report every bad line. Repeated account_ids are found from 12 bytes a row."""
    try:
        window = date_window(today, past_years=AS_OF_PAST_YEARS, future_days=AS_OF_FUTURE_DAYS)
        check_window(as_of, window, "as_of")
    except ValueError as exc:
        raise IngestError([Problem(0, str(exc))], 1) from None
    window = date_window(today, past_years=CONTRACT_PAST_YEARS, future_days=CONTRACT_FUTURE_DAYS)
    if isinstance(rows, Records):
        rows = rows.expecting(ACCOUNT_REQUIRED + ACCOUNT_OPTIONAL)
    in_batch: dict[str, int] = {}  # account_id -> its line, in the batch being gathered
    keys, lines = array("q"), array("I")  # every row's account_id hashed, and its line: 12 bytes a row
    good = 0
    for line, rec, error in rows:
        if error or rec is None:
            bad.add(line, error or "unreadable")
            continue
        try:
            row = _account_row(rec, window)
        except ValueError as exc:
            bad.add(line, str(exc))
            continue
        ext = row["external_id"]
        if (first := in_batch.get(ext)) is not None:  # within a batch: one snapshot row per account
            bad.add(line, f"account_id {ext!r} appears again (first on line {first})")
            continue
        in_batch[ext] = line
        keys.append(hash(ext))
        lines.append(line)
        if not bad.bad:
            good += 1
            yield line, row
        if (good % ACCOUNT_BATCH == 0 and not bad.bad) or len(in_batch) >= ACCOUNT_BATCH:
            in_batch.clear()  # a batch is complete: repeats across batches are found at the end
    report_repeats(keys, lines, bad, _again)


def _again(first: int) -> str:
    return f"the same account_id appears again (first on line {first})"


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def ingest_accounts(
    session: Session,
    rows: Records | Iterable[Row],
    *,
    as_of: date,
    now: datetime,
    today: date | None = None,
) -> Result:
    """Upsert accounts by account_id and record how each stood on ``as_of``, in the caller's transaction.
    ``today`` is the team's day (schedule.timezone) that bounds the dates; without it, ``now``'s UTC day.

    An account Baton already knows from a handoff (same name, no account_id yet) is linked, not duplicated.
    Rows are written in batches of ACCOUNT_BATCH as they stream in (the accounts each batch touched leave
    the session once flushed); any bad line refuses the file, and the caller's rollback undoes the batches.
    """
    bad, result = Collector(), Result()
    for chunk in _batches(_checked(rows, as_of, today or now.date(), bad), ACCOUNT_BATCH):
        if not bad.bad:
            _write_accounts(session, chunk, as_of=as_of, now=now, bad=bad, result=result)
    bad.raise_if_any()
    return result


def import_accounts(
    db: Database,
    rows: Records | Iterable[Row],
    *,
    as_of: date,
    clock: Clock,
    today: date | None = None,
    staged: bool | None = None,
) -> Result:
    """``ingest_accounts`` as its own units of work, for the CLI and the API. On SQLite the file is
    checked into a private stage, then applied in short transactions that save what they overwrite
    (storage/imports.py); on PostgreSQL one transaction (``staged`` forces either way). Raises
    ImportBusy while another import applies; ``details["recovered"]`` lists the imports a crashed
    process had left half-applied, rolled back first."""
    recovered = imports.recover(db, clock)
    now = clock()
    if not (staged if staged is not None else db.engine.dialect.name == "sqlite"):
        # Measured (benchmarks/import_contention.py --kind accounts): on PostgreSQL one transaction
        # blocks no Slack write that does not touch the same account rows, and it is faster.
        with db.session() as session:
            result = ingest_accounts(session, rows, as_of=as_of, now=now, today=today)
    else:
        result = _staged_import(db, rows, as_of=as_of, now=now, today=today or now.date(), clock=clock)
    result.details["recovered"] = recovered
    return result


def _staged_import(
    db: Database, rows: Records | Iterable[Row], *, as_of: date, now: datetime, today: date, clock: Clock
) -> Result:
    result, bad, staged = Result(), Collector(), 0
    with db.engine.connect() as conn:
        insert_sql = imports.create_account_stage(conn)
        try:
            for chunk in _batches(_checked(rows, as_of, today, bad), ACCOUNT_BATCH):
                if not bad.bad:
                    conn.exec_driver_sql(insert_sql, [(line, _encode(row)) for line, row in chunk])
                    staged += len(chunk)
            bad.raise_if_any()

            def apply(c: Connection, import_id: int, lo: int, hi: int) -> None:
                _apply_accounts(c, import_id, lo, hi, as_of=as_of, now=now, result=result)

            imports.apply_stage(
                conn, db, clock, staged, kind="accounts", apply=apply, chunk=min(APPLY_CHUNK, ACCOUNT_BATCH)
            )
        finally:
            imports.drop_stage(conn, imports.ACCOUNT_STAGE)
    return result


def _encode(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, ensure_ascii=False)


def _decode(data: str) -> dict[str, Any]:
    row = json.loads(data)
    row["mrr"] = Decimal(row["mrr"])
    for k in _DATES:
        if row.get(k) is not None:
            row[k] = date.fromisoformat(row[k])
    return row


def _apply_accounts(
    conn: Connection, import_id: int, lo: int, hi: int, *, as_of: date, now: datetime, result: Result
) -> None:
    """Staged rows ``lo < seq <= hi`` written in the connection's transaction with their undo rows; a
    name another account holds (taken since the file was checked) refuses the file, and it is undone."""
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    staged = conn.exec_driver_sql(
        f"SELECT line, data FROM {imports.ACCOUNT_STAGE} WHERE seq > {mark} AND seq <= {mark} ORDER BY seq",
        (lo, hi),
    ).all()
    bad, undo = Collector(), []
    with Session(bind=conn) as session:  # joins the connection's transaction; apply_stage commits it
        _write_accounts(
            session, [(line, _decode(data)) for line, data in staged], as_of=as_of, now=now, bad=bad,
            result=result, undo=undo, lock=lambda: serialize(session, "data_imports"),
        )  # fmt: skip
        bad.raise_if_any()
        if undo:
            session.execute(insert(AccountUndo), [{"import_id": import_id, **u} for u in undo])


@dataclass
class _Known:
    """The accounts one batch names, as they stand: by account_id and by name key, which of them came
    from a handoff (their tier is the handoff's), and the day of each one's latest snapshot."""

    by_ext: dict[str, Account]
    by_key: dict[str, Account]
    with_handoff: set[int]
    latest: dict[int, Any]

    @classmethod
    def load(cls, session: Session, exts: list[str], keys: set[str]) -> _Known:
        of = session.scalars
        by_ext = {a.external_id: a for a in of(select(Account).where(Account.external_id.in_(exts)))}
        by_key = {a.name_key: a for a in of(select(Account).where(Account.name_key.in_(keys)))}
        ids = {a.id for a in (*by_ext.values(), *by_key.values())}
        handoffs = session.scalars(select(Handoff.account_id).where(Handoff.account_id.in_(ids)).distinct())
        latest = session.execute(
            select(AccountSnapshot.account_id, func.max(AccountSnapshot.as_of))
            .where(AccountSnapshot.account_id.in_(ids))
            .group_by(AccountSnapshot.account_id)
        )
        return cls(by_ext, by_key, set(handoffs), dict(latest.all()))  # type: ignore[arg-type]


def _write_accounts(
    session: Session,
    chunk: list[tuple[int, dict[str, Any]]],
    *,
    as_of: date,
    now: datetime,
    bad: Collector,
    result: Result,
    undo: list[dict[str, Any]] | None = None,
    lock: Callable[[], None] | None = None,
) -> None:
    """One batch of account rows: only the accounts it names are loaded, and they leave the session
    once written, so memory holds one batch however long the file is. Earlier batches are flushed,
    so a name taken by one is seen by the next. With ``undo``, appends what each row overwrites;
    ``lock`` is called after the reads, before the first write."""
    keys = [normalize_name(row["name"]) for _, row in chunk]
    known = _Known.load(session, [row["external_id"] for _, row in chunk], set(keys))
    before: list[tuple[int, Account, bool, dict[str, Any] | None]] = []  # line, account, created, old
    for (line, row), key in zip(chunk, keys, strict=True):
        placed = _place(session, known, line, row, key, as_of=as_of, now=now, bad=bad, result=result)
        if placed is not None:
            before.append((line, *placed))
    if bad.bad:
        return
    if lock is not None:
        lock()
    session.flush()
    written = [known.by_ext[row["external_id"]] for _, row in chunk]
    if undo is not None:
        old = {
            s.account_id: imports.to_json(_SNAPSHOTS, s)
            for s in session.scalars(
                select(AccountSnapshot).where(
                    AccountSnapshot.account_id.in_([a.id for a in written]), AccountSnapshot.as_of == as_of
                )
            )
        }
        undo += [
            {"seq": line, "account_id": a.id, "as_of": as_of, "created": created, "old_account": was,
             "old_snapshot": old.get(a.id)}
            for line, a, created, was in before
        ]  # fmt: skip
    _snapshots(session, written, [row for _, row in chunk], as_of)
    for account in {id(a): a for a in (*known.by_ext.values(), *known.by_key.values())}.values():
        session.expunge(account)


def _place(
    session: Session,
    known: _Known,
    line: int,
    row: dict[str, Any],
    key: str,
    *,
    as_of: date,
    now: datetime,
    bad: Collector,
    result: Result,
) -> tuple[Account, bool, dict[str, Any] | None] | None:
    """The row's account, changed as the row says: found by account_id, linked by name (a handoff's
    account with no account_id yet) or new. Returns (account, created, its columns before) or None
    when the name belongs to another account (a bad line)."""
    current = known.by_ext.get(row["external_id"])
    if current is not None and current.id in known.latest and _as_date(known.latest[current.id]) > as_of:
        result.rows += 1  # back-filling history: record the snapshot, keep today's account as it is
        result.updated += 1
        return current, False, None
    account, holder = current, known.by_key.get(key)
    if account is None and holder is not None and holder.external_id is None:
        account, result.linked = holder, result.linked + 1
    if holder is not None and (account is None or holder.id != account.id):
        taken = holder.external_id or holder.name
        bad.add(line, f"name {row['name']!r} is already used by account {taken!r}")
        return None
    if account is None:
        account = Account(created_at=now, name_key=key, **{k: row[k] for k in ("name", "external_id")})
        session.add(account)
        was, result.created = None, result.created + 1
    else:
        was, result.updated = imports.to_json(_ACCOUNTS, account), result.updated + 1
        if account.name_key != key:
            known.by_key.pop(account.name_key, None)
    for k, v in row.items():
        if k == "touch_tier" and account.id in known.with_handoff:
            continue  # the handoff (and `/handoff tier`) decide tiers of accounts Baton onboarded
        setattr(account, k, v)
    account.name_key, account.updated_at = key, now
    known.by_ext[row["external_id"]], known.by_key[key] = account, account
    result.rows += 1
    return account, was is None, was


def _snapshots(session: Session, accounts: list[Account], rows: list[dict[str, Any]], as_of: date) -> None:
    """Each account as its row describes it on ``as_of``, replacing what an earlier file said that day."""
    session.execute(
        delete(AccountSnapshot).where(
            AccountSnapshot.account_id.in_([a.id for a in accounts]), AccountSnapshot.as_of == as_of
        )
    )
    session.execute(
        insert(AccountSnapshot),
        [
            {"account_id": a.id, "as_of": as_of, **{k: row.get(k) for k in _SNAPSHOT}}
            for a, row in zip(accounts, rows, strict=True)
        ],
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
