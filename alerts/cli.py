"""Command-line ingest: `python app.py ingest accounts|signals|metrics|touches FILE`, with a progress bar
on a terminal; and the scan and health commands' output."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import IO

from tqdm import tqdm

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
from alerts.textfile import UnreadableText, first_bad_line
from clock import Clock
from settings import Rules
from storage import Database


def _progress(total_bytes: int) -> tqdm:
    """A bar on stderr by bytes read, with the rows stored, shown on a terminal only (tqdm's
    ``disable=None``) unless BATON_PROGRESS=1 asks for it anyway."""
    forced = os.environ.get("BATON_PROGRESS") == "1"
    return tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=False if forced else None,
        mininterval=0.25,
        leave=True,
    )


def _fix(path: Path, exc: UnreadableText, encoding: str | None) -> str:
    """The one line for a file that is not text in its encoding: the first bad line, and what to do."""
    if exc.encoding is None:
        return f"{path}: {exc}; save it as UTF-8 (Excel: CSV UTF-8) or pass --encoding with the one it uses"
    with path.open("rb") as again:
        line = first_bad_line(again, exc.encoding)
    detail = f"{UnreadableText(exc.encoding)}" + (f" (line {line})" if line else "")
    if encoding:
        todo = f"check --encoding {encoding}, or save it as UTF-8 (Excel: CSV UTF-8)"
    elif exc.encoding == "cp932":
        todo = "save it as UTF-8 (Excel: CSV UTF-8) or pass the --encoding it was saved in"
    else:
        todo = "save it as UTF-8 (Excel: CSV UTF-8) or pass --encoding cp932"
    return f"{path}: {detail}; {todo}"


def ingest_file(
    db: Database,
    kind: str,
    path: Path,
    *,
    as_of: date,
    fmt: str | None,
    clock: Clock,
    timezone: str = "Asia/Tokyo",
    encoding: str | None = None,
) -> int:
    """`app.py ingest KIND FILE`: 0 when stored, 1 when the file was refused, 2 when it cannot be read;
    every refusal is printed with what to do, and nothing is written."""
    if path.is_dir():
        print(f"{path}: is a directory; give the CSV or JSON-lines file inside it", file=sys.stderr)
        return 2
    if not path.exists():
        print(f"{path}: no such file; check the path (relative to {Path.cwd()})", file=sys.stderr)
        return 2
    fmt = fmt or detect_format(path.name)
    try:
        raw = path.open("rb")
    except OSError as exc:
        print(f"{path}: cannot be read ({exc.strerror}); check its permissions", file=sys.stderr)
        return 2
    with raw, _progress(path.stat().st_size) as bar:

        def progress(rows: int) -> None:
            bar.update(raw.tell() - bar.n)
            bar.set_postfix_str(f"{rows:,} rows", refresh=False)

        try:
            with db.session() as session:
                rows = records(text_stream(raw, encoding), fmt)
                if kind == "signals":
                    result: Result = ingest_signals(session, rows, progress=progress)
                elif kind == "metrics":
                    result = ingest_metrics(session, rows)
                elif kind == "touches":
                    result = ingest_touches(session, rows, clock=clock, timezone=timezone)
                else:
                    result = ingest_accounts(session, rows, as_of=as_of, now=clock())
        except IngestError as exc:
            bar.close()
            print(
                f"{path}: refused, nothing was written. {exc.bad} bad line(s):\n{exc.report()}",
                file=sys.stderr,
            )
            return 1
        except UnreadableText as exc:
            bar.close()
            print(f"{_fix(path, exc, encoding)}. Nothing was written.", file=sys.stderr)
            return 2
        bar.update(bar.total - bar.n)
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
        data = data_through(session, as_of, rules.health)
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
