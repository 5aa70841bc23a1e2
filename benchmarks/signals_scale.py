"""Ingest and scan at scale, each next to a raw baseline measured in the same run.

    .venv/bin/python benchmarks/signals_scale.py [--accounts 10000] [--days 180] [--metrics 10]
    .venv/bin/python benchmarks/signals_scale.py --scaling [--accounts 2500 --days 60]

Generates accounts x days x metrics daily values as CSV, then measures, each in a fresh process so
peak memory is its own:
  * Baton's ingest (`python app.py ingest signals FILE` code path: parse, validate, upsert, one
    transaction) into SQLite, against a raw loader: csv.reader + sqlite3 executemany of the same rows
    into an identically keyed table, no validation;
  * Baton's full scan (health of every account, alert rules, alerts written), against one raw SQL
    aggregate over the same window with sqlite3;
  * the weekly digest (KPIs, health now and a week ago, the 12-week trend), on the first run and once
    the daily scans have kept each day's band counts, and the day's cadence reminders.
With --scaling, ingest and scan run at 1x, 2x and 4x the accounts and peak memory is compared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 11, 22)
METRICS = [
    "active_users",
    "logins",
    "reports",
    "exports",
    "api_calls",
    "projects",
    "invites",
    "comments",
    "dashboards",
    "support_tickets",
    "searches",
    "uploads",
]


def generate(folder: Path, accounts: int, days: int, metrics: int) -> tuple[Path, Path, int]:
    rnd = random.Random(7)
    base = [rnd.randrange(5, 150) for _ in range(accounts)]  # typical daily active users
    acc = folder / "accounts.csv"
    with acc.open("w") as f:
        f.write("account_id,name,plan,mrr,seats,contract_start,renewal_date\n")
        for i in range(accounts):
            f.write(
                f"AC{i:06d},Account {i},Pro,{rnd.randrange(10, 500) * 1000},"
                f"{int(base[i] * rnd.uniform(1.3, 1.8)) + 1},"
                f"2025-01-01,{(AS_OF + timedelta(days=rnd.randrange(1, 365))).isoformat()}\n"
            )
    sig = folder / "signals.csv"
    names = METRICS[:metrics]
    rows = 0
    with sig.open("w") as f:
        f.write("account_id,date,metric,value\n")
        # a realistic book: most accounts steady with noise; 5% declining over the last weeks, 3% growing,
        # 2% gone quiet three weeks ago (these are the ones the scan should flag)
        kind = [rnd.choices("sdgq", weights=(90, 5, 3, 2))[0] for _ in range(accounts)]
        for d in range(days - 1, -1, -1):  # a day at a time, as daily exports arrive
            day = (AS_OF - timedelta(days=d)).isoformat()
            lines = []
            for i in range(accounts):
                level = base[i]
                k = kind[i]
                if k == "d" and d < 21:
                    level = level * (0.3 + d / 30)
                elif k == "g" and d < 21:
                    level = level * (1.6 - d / 35)
                elif k == "q" and d < 21:
                    level = 0
                for m, name in enumerate(names):
                    lines.append(
                        f"AC{i:06d},{day},{name},{int(level * (1 + m % 3) * (0.9 + 0.2 * rnd.random()))}\n"
                    )
            f.writelines(lines)
            rows += len(lines)
    return acc, sig, rows


CHILD = r'''
import json, resource, sqlite3, sys, time, csv
mode, db, path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, sys.argv[4])
t = time.perf_counter()
out = {}
if mode == "baton-ingest":
    from datetime import datetime, timezone
    from ingest import ingest_accounts, ingest_signals, records, text_stream
    from storage import Database
    d = Database(f"sqlite:///{db}"); d.upgrade()
    with open(sys.argv[5], "rb") as raw, d.session() as s:
        ingest_accounts(s, records(text_stream(raw), "csv"), as_of=datetime(2026, 11, 22).date(),
                        now=datetime.now(timezone.utc))
    t = time.perf_counter()
    with open(path, "rb") as raw, d.session() as s:
        out["rows"] = ingest_signals(s, records(text_stream(raw), "csv")).rows
elif mode == "raw-ingest":
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE signals (day TEXT, account_id TEXT, metric TEXT, value REAL, "
                "PRIMARY KEY (day, account_id, metric)) WITHOUT ROWID")
    with open(path, newline="") as f:
        r = csv.reader(f); next(r)
        con.executemany("INSERT OR REPLACE INTO signals VALUES (?, ?, ?, ?)",
                        ((row[1], row[0], row[2], float(row[3])) for row in r))
    con.commit()
    out["rows"] = con.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
elif mode == "baton-scan":
    from datetime import datetime, timezone, date
    from alerts.service import scan
    from settings import Rules
    from storage import Database
    d = Database(f"sqlite:///{db}")
    t = time.perf_counter()  # the scan itself, not Python's imports
    with d.session() as s:
        res = scan(s, as_of=date(2026, 11, 22), rules=Rules.load(None),
                   clock=lambda: datetime.now(timezone.utc))
        out["accounts"], out["raised"] = res.accounts, len(res.raised)
elif mode in ("baton-digest", "baton-digest-warm"):
    from datetime import date, datetime, timedelta, timezone
    from alerts.service import scan
    from digest.report import build
    from settings import Rules
    from storage import Database
    d = Database(f"sqlite:///{db}")
    if mode == "baton-digest-warm":  # as in production: the daily scans kept each day's band counts
        for k in range(12):
            with d.session() as s:
                scan(s, as_of=date(2026, 11, 22) - timedelta(days=7 * k), rules=Rules.load(None),
                     clock=lambda: datetime.now(timezone.utc))
    t = time.perf_counter()
    with d.session() as s:
        report = build(s, date(2026, 11, 23), Rules.load(None))
    out["weeks"] = len(report["trend"])
elif mode == "baton-remind":
    from datetime import date, datetime, timezone
    from handoff.reminders import queue
    from settings import Rules
    from storage import Database
    d = Database(f"sqlite:///{db}")
    t = time.perf_counter()
    with d.session() as s:
        q = queue(s, date(2026, 11, 23), Rules.load(None), datetime.now(timezone.utc))
        s.rollback()  # measure the work, leave the data as it was
    out["reminders"] = q.reminders
elif mode == "raw-scan":
    con = sqlite3.connect(db)
    rows = con.execute("""
        SELECT account_id, metric,
               SUM(CASE WHEN day > '2026-11-15' THEN value ELSE 0 END),
               SUM(CASE WHEN day > '2026-10-18' AND day <= '2026-11-15' THEN value ELSE 0 END),
               MAX(CASE WHEN day > '2026-11-15' THEN value END),
               MAX(CASE WHEN value > 0 THEN day END)
        FROM signals WHERE day > '2026-10-18' AND day <= '2026-11-22'
        GROUP BY account_id, metric""").fetchall()
    out["groups"] = len(rows)
out["seconds"] = time.perf_counter() - t
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''


def child(mode: str, db: Path, path: Path, accounts_csv: Path | None = None) -> dict:
    args = [sys.executable, "-c", CHILD, mode, str(db), str(path), str(ROOT)]
    if accounts_csv:
        args.append(str(accounts_csv))
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(accounts: int, days: int, metrics: int, folder: Path, raw: bool = True) -> dict:
    t = time.perf_counter()
    acc, sig, rows = generate(folder, accounts, days, metrics)
    gen = time.perf_counter() - t
    db = folder / "baton.db"
    ours = child("baton-ingest", db, sig, acc)
    result = {"accounts": accounts, "rows": rows, "generate_s": gen, "ingest": ours}
    if raw:
        result["raw_ingest"] = child("raw-ingest", folder / "raw.db", sig)
    if raw:
        result["raw_scan"] = child("raw-scan", folder / "raw.db", sig)
    # the digest and the reminders before the scan, on the data as ingested
    result["digest"] = child("baton-digest", db, sig)
    result["remind"] = child("baton-remind", db, sig)
    result["scan"] = child("baton-scan", db, sig)
    if raw:
        result["digest_warm"] = child("baton-digest-warm", db, sig)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--scaling", action="store_true", help="1x, 2x, 4x the accounts; compare peak memory")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; SQLite; as of {AS_OF}")
    if args.scaling:
        print(
            f"{'accounts':>9} {'rows':>12} {'ingest s':>9} {'rows/s':>10} {'ingest MB':>10} {'scan s':>7} "
            f"{'scan MB':>8}"
        )
        for factor in (1, 2, 4):
            with tempfile.TemporaryDirectory(prefix="baton-scale-") as tmp:
                r = run(args.accounts * factor, args.days, args.metrics, Path(tmp), raw=False)
            i, sc = r["ingest"], r["scan"]
            print(
                f"{r['accounts']:>9,} {r['rows']:>12,} {i['seconds']:>9.1f} "
                f"{i['rows'] / i['seconds']:>10,.0f} "
                f"{i['peak_rss_mb']:>10.0f} {sc['seconds']:>7.2f} {sc['peak_rss_mb']:>8.0f}"
            )
        return 0
    with tempfile.TemporaryDirectory(prefix="baton-scale-") as tmp:
        r = run(args.accounts, args.days, args.metrics, Path(tmp))
    i, ri, sc, rs = r["ingest"], r["raw_ingest"], r["scan"], r["raw_scan"]
    print(
        f"{r['rows']:,} rows ({args.accounts:,} accounts x {args.days} days x {args.metrics} metrics); "
        f"generated in {r['generate_s']:.0f} s"
    )
    print(
        f"ingest  Baton {i['rows'] / i['seconds']:>10,.0f} rows/s "
        f"({i['seconds']:.1f} s, peak {i['peak_rss_mb']:.0f} MB)"
        f"   raw executemany {ri['rows'] / ri['seconds']:>10,.0f} rows/s ({ri['seconds']:.1f} s)"
        f"   ratio {(i['rows'] / i['seconds']) / (ri['rows'] / ri['seconds']):.2f} of raw (goal >= 0.5)"
    )
    print(
        f"scan    Baton {sc['seconds']:.2f} s for {sc['accounts']:,} accounts "
        f"({sc['raised']:,} alerts raised, "
        f"peak {sc['peak_rss_mb']:.0f} MB)   raw aggregate {rs['seconds']:.2f} s   "
        f"ratio {sc['seconds'] / rs['seconds']:.2f}x (goal < 10 s and <= 3x)"
    )
    dg, dw, rm = r["digest"], r["digest_warm"], r["remind"]
    print(
        f"digest  Baton, first run (every trend week scored: health {dg['weeks'] + 2} times) "
        f"{dg['seconds']:.2f} s = {dg['seconds'] / rs['seconds']:.1f}x one raw aggregate; "
        f"after daily scans (trend weeks kept) {dw['seconds']:.2f} s = "
        f"{dw['seconds'] / rs['seconds']:.1f}x (peak {dw['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"remind  Baton {rm['seconds']:.2f} s ({rm['reminders']:,} reminders due, "
        f"peak {rm['peak_rss_mb']:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
