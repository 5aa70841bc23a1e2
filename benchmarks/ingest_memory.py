"""Peak memory of an import as its file grows: an accounts CSV through `ingest` (the CLI's path) and a
JSON-array signals body through the HTTP API, each at two sizes, on SQLite.

    .venv/bin/python benchmarks/ingest_memory.py [--sizes 20 40] [--kinds accounts json-api]

Each run is its own process (its peak RSS is its own): printed are the file's MB and rows, the process's
peak RSS, the RSS it had before reading the file (imports, the database), the difference, and seconds.
Flat means the difference does not grow with the file.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
ACCOUNT_ROW = 130  # bytes of one generated accounts line, about


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_accounts(path: Path, mb: int) -> int:
    n = mb * 1_000_000 // ACCOUNT_ROW
    with path.open("w") as f:
        f.write("account_id,name,plan,mrr,seats,contract_start,renewal_date,segment,csm_email\n")
        for i in range(n):
            f.write(
                f"AC{i:07d},Customer number {i} Kabushiki Kaisha,Enterprise,{(i % 500) * 1000 + 1000},"
                f"{i % 900 + 10},2025-01-01,2027-0{i % 9 + 1}-15,mid-market,csm{i % 40}@example.com\n"
            )
    return n


def write_signals_json(path: Path, mb: int, accounts: int = 500) -> int:
    n = 0
    with path.open("w") as f:
        f.write("[")
        while f.tell() < mb * 1_000_000:
            day = date.fromordinal(date(2026, 11, 22).toordinal() - n // (accounts * 4))
            items = [
                {"account_id": f"AC{a:07d}", "date": day.isoformat(), "metric": f"m{m}", "value": a % 97}
                for a in range(accounts)
                for m in range(4)
            ]
            f.write(("," if n else "") + ",".join(json.dumps(i) for i in items))
            n += len(items)
        f.write("]")
    return n


def child(kind: str, db_url: str, path: Path) -> None:
    from api.ingest import IngestAPI
    from ingest import Batch, ingest, records, text_stream
    from storage import Database

    db = Database(db_url)

    def clock() -> datetime:
        return NOW

    before = _rss_mb()
    started = time.perf_counter()
    if kind == "accounts":
        with path.open("rb") as f:
            ingest(db, "accounts", records(text_stream(f), "csv"), Batch(clock, "UTC", date(2026, 11, 23)))
    else:
        body = path.open("rb")
        environ = {
            "PATH_INFO": "/api/v1/signals",
            "REQUEST_METHOD": "POST",
            "HTTP_AUTHORIZATION": "Bearer t",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(path.stat().st_size),
            "wsgi.input": body,
        }
        status: list[str] = []
        out = IngestAPI(db, token="t", clock=clock, timezone="UTC")(environ, lambda s, h: status.append(s))
        if not status[0].startswith("200"):
            raise SystemExit(f"{status[0]}: {b''.join(out)[:500]!r}")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before": before, "peak": peak, "seconds": seconds}))


def measure(kind: str, mb: int, folder: Path) -> dict[str, float]:
    from ingest import Batch, ingest, records
    from storage import Database

    url = f"sqlite:///{folder}/{kind}-{mb}.db"
    db = Database(url)
    db.upgrade()
    path = folder / f"{kind}-{mb}.{'csv' if kind == 'accounts' else 'json'}"
    if kind == "accounts":
        rows = write_accounts(path, mb)
    else:  # the accounts the signals name, first
        acc = folder / "accounts-for-signals.csv"
        write_accounts(acc, 500 * ACCOUNT_ROW // 1_000_000 + 1)
        with acc.open() as f:
            batch = Batch(lambda: NOW, "UTC", date(2026, 11, 23))
            ingest(db, "accounts", records(io.StringIO(f.read()), "csv"), batch)
        rows = write_signals_json(path, mb)
    db.dispose()
    got = subprocess.run(
        [sys.executable, __file__, "--child", kind, url, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if got.returncode:
        raise SystemExit(got.stderr[-2000:])
    figures = json.loads(got.stdout.strip().splitlines()[-1])
    return {"mb": path.stat().st_size / 1e6, "rows": rows, **figures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 40], help="file sizes in MB")
    ap.add_argument("--kinds", nargs="+", default=["accounts", "json-api"], choices=["accounts", "json-api"])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return 0
    print(f"{'kind':<10}{'file MB':>8}{'rows':>10}{'RSS before':>11}{'peak':>8}{'growth':>8}{'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for mb in args.sizes:
                r = measure(kind, mb, Path(tmp))
                print(
                    f"{kind:<10}{r['mb']:>8.0f}{r['rows']:>10,}{r['before']:>10.0f}M{r['peak']:>7.0f}M"
                    f"{r['peak'] - r['before']:>7.0f}M{r['seconds']:>9.1f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
