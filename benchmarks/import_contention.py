"""Slack-facing writes while a big signals (or, with --kind accounts, accounts) file imports: the old
single transaction against the bounded import (stage, then short transactions), on SQLite and, with
--pg-url, on PostgreSQL, in the same run.

    .venv/bin/python benchmarks/import_contention.py [--accounts 3000] [--days 90] [--metrics 8]
        [--kind signals|accounts] [--pg-url postgresql+psycopg://baton@127.0.0.1:5432/baton]

With --kind accounts the accounts file (--accounts rows) is imported twice: the measured run is the
second, a day later, which updates every account and adds a snapshot each.

A writer thread does what a handoff submission or an Accept click does to the database (one short
transaction: a row written, committed) every 20 ms while the import runs, with the production settings
(SQLite's 5 s busy timeout). Printed per backend and mode: the import's seconds, writes tried, writes
failed, and their latency p50 / p99 / max, and writes over Slack's 3 s window.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from signals_scale import AS_OF, generate  # noqa: E402

from ingest import (  # noqa: E402
    import_accounts,
    import_signals,
    ingest_accounts,
    ingest_signals,
    records,
    text_stream,
)
from ingest.accounts import APPLY_CHUNK  # noqa: E402
from storage import Database, imports  # noqa: E402
from storage.models import Base, RequestSeen  # noqa: E402

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def fresh(url: str | None, folder: Path, name: str) -> Database:
    if url is None:
        db = Database(f"sqlite:///{folder / name}.db")
    else:
        db = Database(url)
        with db.engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    db.upgrade()
    return db


def _accounts_import(db: Database, mode: str, accounts: Path) -> None:
    with accounts.open("rb") as f:
        rows = records(text_stream(f), "csv")
        day = AS_OF + timedelta(days=1)
        if mode == "one transaction":
            with db.session() as s:
                ingest_accounts(s, rows, as_of=day, now=NOW, today=date(2026, 11, 23))
        else:
            import_accounts(db, rows, as_of=day, clock=clock, today=date(2026, 11, 23), staged=True)


def run(db: Database, mode: str, accounts: Path, signals: Path, kind: str = "signals") -> dict[str, float]:
    with db.session() as s, accounts.open("rb") as f:
        ingest_accounts(s, records(text_stream(f), "csv"), as_of=AS_OF, now=NOW, today=date(2026, 11, 23))
    lat: list[float] = []
    failed = 0
    done = threading.Event()

    def writer() -> None:
        nonlocal failed
        n = 0
        while not done.is_set():
            n += 1
            t = time.perf_counter()
            try:
                with db.session() as s:
                    s.add(RequestSeen(key=f"{mode}-{n}", result={}, created_at=NOW))
                lat.append(time.perf_counter() - t)
            except Exception:  # "database is locked" after the busy timeout: the submission is lost
                failed += 1
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    started = time.perf_counter()
    thread.start()
    if kind == "accounts":
        _accounts_import(db, mode, accounts)
    else:
        with signals.open("rb") as f:
            rows = records(text_stream(f), "csv")
            if mode == "one transaction":
                with db.session() as s:
                    ingest_signals(s, rows, today=date(2026, 11, 23))
            else:
                import_signals(db, rows, clock=clock, today=date(2026, 11, 23), staged=True)
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [0.0] * 99
    return {
        "import_s": seconds,
        "writes": len(lat) + failed,
        "failed": failed,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * q[98],
        "max_ms": 1000 * max(lat, default=float("nan")),
        "over_3s": sum(1 for x in lat if x > 3) + failed,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--metrics", type=int, default=8)
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--kind", choices=("signals", "accounts"), default="signals")
    ap.add_argument("--chunk", type=int, default=imports.CHUNK, help="rows per apply transaction")
    args = ap.parse_args()
    imports.CHUNK = args.chunk
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        days, metrics = (1, 1) if args.kind == "accounts" else (args.days, args.metrics)
        acc, sig, n = generate(folder, args.accounts, days, metrics)
        if args.kind == "accounts":
            size, n, chunk = acc.stat().st_size / 1e6, args.accounts, APPLY_CHUNK
        else:
            size, chunk = sig.stat().st_size / 1e6, imports.CHUNK
        print(f"{args.kind} file: {n:,} rows, {size:.1f} MB; {chunk:,} rows per apply transaction")
        print(
            f"{'backend':<11}{'mode':<17}{'import s':>9}{'writes':>8}{'failed':>8}"
            f"{'p50 ms':>8}{'p99 ms':>9}{'max ms':>9}{'> 3 s':>7}"
        )
        backends = [("SQLite", None)] + ([("PostgreSQL", args.pg_url)] if args.pg_url else [])
        for name, url in backends:
            figures = {}
            for mode in ("one transaction", "bounded"):
                db = fresh(url, folder, mode.replace(" ", "-"))
                figures[mode] = r = run(db, mode, acc, sig, args.kind)
                db.dispose()
                print(
                    f"{name:<11}{mode:<17}{r['import_s']:>9.1f}{r['writes']:>8}{r['failed']:>8}"
                    f"{r['p50_ms']:>8.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['over_3s']:>7}"
                )
            ratio = figures["bounded"]["import_s"] / figures["one transaction"]["import_s"]
            print(f"{name}: bounded import takes {ratio:.2f}x the single transaction's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
