"""Command-line ingest: `python app.py ingest accounts|signals FILE`, with a progress line on large files."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import IO

from alerts.health import DataThrough, data_through, describe, health_all
from alerts.ingest import (
    IngestError,
    Result,
    detect_format,
    ingest_accounts,
    ingest_metrics,
    ingest_signals,
    ingest_touches,
    records,
    text_stream,
)
from alerts.service import ScanResult, scan
from clock import Clock
from settings import Rules
from storage import Database


class Progress:
    """`12,345,678 rows · 43% · 310,000 rows/s` on stderr, redrawn at most a few times a second."""

    def __init__(self, raw: IO[bytes], total_bytes: int, out: IO[str] = sys.stderr) -> None:
        self.raw, self.total, self.out = raw, max(total_bytes, 1), out
        self.started = self.last = time.monotonic()
        self.enabled = out.isatty() or os.environ.get("BATON_PROGRESS") == "1"

    def __call__(self, rows: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.25:
            return
        self.last = now
        pct = min(100, 100 * self.raw.tell() // self.total)
        rate = rows / max(now - self.started, 1e-6)
        self.out.write(f"\r{rows:,} rows · {pct}% · {rate:,.0f} rows/s ")
        self.out.flush()

    def done(self, rows: int) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            self.out.write(f"\r{rows:,} rows in {elapsed:.1f} s ({rows / max(elapsed, 1e-6):,.0f} rows/s)\n")


def ingest_file(
    db: Database,
    kind: str,
    path: Path,
    *,
    as_of: date,
    fmt: str | None,
    clock: Clock,
    timezone: str = "Asia/Tokyo",
) -> int:
    if not path.exists():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    fmt = fmt or detect_format(path.name)
    with path.open("rb") as raw:
        progress = Progress(raw, path.stat().st_size)
        try:
            with db.session() as session:
                rows = records(text_stream(raw), fmt)
                if kind == "signals":
                    result: Result = ingest_signals(session, rows, progress=progress)
                elif kind == "metrics":
                    result = ingest_metrics(session, rows)
                elif kind == "touches":
                    result = ingest_touches(session, rows, clock=clock, timezone=timezone)
                else:
                    result = ingest_accounts(session, rows, as_of=as_of, now=clock())
        except IngestError as exc:
            print(
                f"{path}: refused, nothing was written. {exc.bad} bad line(s):\n{exc.report()}",
                file=sys.stderr,
            )
            return 1
        progress.done(result.rows)
    if kind == "signals":
        print(f"{path}: {result.rows:,} signal values stored")
    elif kind == "metrics":
        print(f"{path}: {result.rows:,} company metric values stored")
    elif kind == "touches":
        print(f"{path}: {result.rows:,} touches logged, {result.details['skipped']:,} already known")
    else:
        print(
            f"{path}: {result.rows:,} accounts as of {as_of.isoformat()} "
            f"({result.created} new, {result.updated} updated, {result.linked} linked to handoffs)"
        )
    return 0


def run_scan(
    db: Database,
    rules: Rules,
    *,
    as_of: date,
    clock: Clock,
    as_json: bool,
    dry_run: bool,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> ScanResult:
    """`app.py scan`: raise and store alerts (their Slack messages wait in the outbox), and print them,
    with how far the usage data went (the scan scores up to that day, never beyond it)."""
    with db.session() as session:
        result = scan(session, as_of=as_of, rules=rules, clock=clock)
        if dry_run:
            session.rollback()
    data = result.data or DataThrough(as_of, None)
    if as_json:
        json.dump([r.as_json() for r in result.raised], out, ensure_ascii=False, indent=2)
        out.write("\n")
        if data.age_days != 0:  # the array stays the alerts; what a person must know goes to stderr
            print(data.describe(rules.health), file=err)
        return result
    verb = "would raise" if dry_run else "raised"
    print(
        f"Scan as of {as_of.isoformat()}, usage data through "
        f"{data.through.isoformat() if data.through else '-'}: {result.accounts:,} active accounts; {verb} "
        f"{len(result.raised)} alert(s)" + (f" (quiet: {result.quiet})" if result.quiet else ""),
        file=out,
    )
    if data.age_days != 0:
        print(data.describe(rules.health), file=out)
    names = rules.health.metric_names
    for r in result.raised:
        print(
            f"  {r.change:<8} {r.finding.kind:<10} {r.finding.severity:<6} {r.account_name} ({r.account})"
            f"  score {r.finding.score}",
            file=out,
        )
        for reason in r.finding.reasons:
            print(f"      - {describe(reason['code'], reason['params'], names)}", file=out)
    return result


def print_health(
    db: Database,
    rules: Rules,
    *,
    as_of: date,
    as_json: bool,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    """`app.py health`: every active account's score, scored up to the book's data-through day."""
    with db.session() as session:
        data = data_through(session, as_of)
        names = rules.health.metric_names
        rows = [h.as_json(names) for h in health_all(session, as_of, rules.health, data=data)]
    if as_json:
        json.dump(rows, out, ensure_ascii=False, indent=2)
        out.write("\n")
        if data.age_days != 0:
            print(data.describe(rules.health), file=err)
        return 0
    through = data.through.isoformat() if data.through else "-"
    print(f"Health as of {as_of.isoformat()}, usage data through {through}", file=out)
    if data.age_days != 0:
        print(data.describe(rules.health), file=out)
    for r in rows:
        drivers = "; ".join(d["text"] for d in r["drivers"]) or "-"
        shown = "-" if r["score"] is None else r["score"]
        own = r["last_data"]
        feed = f" [own data through {own}]" if own and data.through and own < data.through.isoformat() else ""
        print(f"{shown:>4} {r['band']:<7} {r['name']} ({r['account_id']}){feed}: {drivers}", file=out)
    return 0
