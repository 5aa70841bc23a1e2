"""Command-line ingest: `python app.py ingest accounts|signals|metrics|touches FILE`, with a progress bar
on a terminal; and the scan and health commands' output. Lines for people are in the terminal's language
(``tr``, from cli.words: bot/templates/{en,ja}/cli.yml); JSON and the errors' technical parts are not."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from tqdm import tqdm

from accounts.health import DataThrough, data_through, health_all
from alerts import budget
from alerts.rules import CHURN
from alerts.service import ScanResult, scan
from bot.i18n import Translator
from bot.views.alert_card import reason_text
from cli import day, progress_bar, reporter, words
from clock import Clock
from ingest import Batch, IngestError, Result, detect_format, ingest, records, text_stream
from ingest.textfile import UnreadableText, first_bad_line
from settings import HealthRules, Rules
from storage import Database
from storage.imports import ImportBusy
from storage.models import Account


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
    tr: Translator | None = None,
) -> int:
    """`app.py ingest KIND FILE`: 0 when stored, 1 when the file was refused, 2 when it cannot be read;
    every refusal is printed with what to do, and nothing is written."""
    tr = tr or words("en")
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
    with raw:
        batch = Batch(clock, timezone, as_of)
        result = _ingest_stream(db, kind, path, raw, batch, fmt, encoding, tr)
    if isinstance(result, int):
        return result
    _print_ingested(tr, kind, path, result, as_of, timezone)
    return 0


def _ingest_stream(
    db: Database,
    kind: str,
    path: Path,
    raw: IO[bytes],
    batch: Batch,
    fmt: str,
    encoding: str | None,
    tr: Translator,
) -> Result | int:
    """The file's rows ingested in one batch, with a bar of the bytes read; an exit code when refused."""
    with _progress(path.stat().st_size) as bar:

        def progress(rows: int) -> None:
            bar.update(raw.tell() - bar.n)
            bar.set_postfix_str(tr.t("cli.progress.rows", rows=rows), refresh=False)

        try:
            rows = records(text_stream(raw, encoding), fmt)
            result = ingest(db, kind, rows, replace(batch, progress=progress))
        except ImportBusy as exc:
            bar.close()
            print(f"{path}: {exc}. Nothing was written.", file=sys.stderr)
            return 1
        except IngestError as exc:
            bar.close()
            print(f"{tr.t('cli.ingest.refused', path=path, bad=exc.bad)}\n{exc.report()}", file=sys.stderr)
            return 1
        except UnreadableText as exc:
            bar.close()
            print(f"{_fix(path, exc, encoding)}. Nothing was written.", file=sys.stderr)
            return 2
        bar.update(bar.total - bar.n)
    return result


def _print_ingested(
    tr: Translator, kind: str, path: Path, result: Result, as_of: date, timezone: str
) -> None:
    """What was stored, and any earlier import found unfinished and rolled back."""
    for r in result.details.get("recovered", ()):
        started = r.started_at.astimezone(ZoneInfo(timezone)).date()
        key = "cli.ingest.recovered" if r.kind == "signals" else "cli.ingest.recovered_accounts"
        print(tr.t(key, rows=r.rows, started=day(tr, started)))
    if kind == "touches":
        print(tr.t("cli.ingest.touches", path=path, rows=result.rows, skipped=result.details["skipped"]))
    elif kind == "accounts":
        print(
            tr.t(
                "cli.ingest.accounts",
                path=path,
                rows=result.rows,
                as_of=day(tr, as_of),
                created=result.created,
                updated=result.updated,
                linked=result.linked,
            )
        )
    else:
        print(tr.t(f"cli.ingest.{kind}", path=path, rows=result.rows))


def through(tr: Translator, data: DataThrough) -> str:
    """ "usage data through DAY" for a title, or that there is none."""
    return (
        tr.t("cli.data.through", date=day(tr, data.through))
        if data.through
        else tr.t("cli.data.through_none")
    )


def data_line(tr: Translator, data: DataThrough, rules: HealthRules) -> str:
    """How far the usage data goes, in the terminal's language (DataThrough.describe's cases)."""
    if data.through is None:
        return tr.t("cli.data.none", as_of=day(tr, data.as_of))
    if data.age_days == 0:
        return tr.t("cli.data.complete", through=day(tr, data.through))
    n = data.age_days or 0
    days = tr.t("cli.days.one") if n == 1 else tr.t("cli.days.other", n=n)
    through, as_of = day(tr, data.through), day(tr, data.as_of)
    key = "cli.data.stale" if data.stale(rules) else "cli.data.late"
    return tr.t(key, days=days, through=through, as_of=as_of)


def run_scan(
    db: Database,
    rules: Rules,
    *,
    as_of: date,
    clock: Clock,
    as_json: bool,
    dry_run: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    tr: Translator | None = None,
) -> ScanResult:
    """`app.py scan`: raise and store alerts (their Slack messages wait in the outbox), and print them,
    with how far the usage data went (the scan scores up to that day, never beyond it); on a terminal,
    a bar of the accounts scored."""
    tr, out, err = tr or words("en"), out or sys.stdout, err or sys.stderr  # the streams of the moment
    if not dry_run:  # like the daily job: train first when the model is missing or stale, once (ledger)
        from jobs.scheduler import Jobs
        from settings import Settings

        jobs = Jobs(db, Settings(rules=rules), clock)
        jobs.train_job(jobs._daily_slot()[1], as_of)
    with db.session() as session, progress_bar(tr.t("cli.progress.accounts"), file=err) as bar:
        if not bar.disable:
            active = select(func.count()).select_from(Account).where(Account.status == "active")
            bar.reset(total=session.scalar(active) or 0)
        result = scan(session, as_of=as_of, rules=rules, clock=clock, progress=reporter(bar))
        if dry_run:
            session.rollback()
    data = result.data or DataThrough(as_of, None)
    if as_json:
        json.dump([r.as_json() for r in result.raised], out, ensure_ascii=False, indent=2)
        out.write("\n")
        if data.age_days != 0:  # the array stays the alerts; what a person must know goes to stderr
            print(data_line(tr, data, rules.health), file=err)
        return result
    _print_scan(tr, result, data, rules, as_of=as_of, dry_run=dry_run, out=out)
    return result


def _print_scan(
    tr: Translator,
    result: ScanResult,
    data: DataThrough,
    rules: Rules,
    *,
    as_of: date,
    dry_run: bool,
    out: IO[str],
) -> None:
    """The scan's summary line, how far the data went when not complete, and each alert with its reasons."""
    quiet = tr.t("cli.sep").join(tr.t(f"cli.scan.quiet.{k}", n=n) for k, n in sorted(result.quiet.items()))
    print(
        tr.t(
            "cli.scan.summary_dry" if dry_run else "cli.scan.summary",
            as_of=day(tr, as_of),
            data=through(tr, data),
            accounts=result.accounts,
            count=len(result.raised),
            quiet=tr.t("cli.scan.quiet", items=quiet) if quiet else "",
        ),
        file=out,
    )
    if data.age_days != 0:
        print(data_line(tr, data, rules.health), file=out)
    names = rules.health.metric_names
    for r in result.raised:
        line = tr.t(
            "cli.scan.alert",
            change=tr.t(f"cli.change.{r.change}"),
            kind=tr.t(f"cli.kind.{r.finding.kind}"),
            severity=tr.t(f"alert.severity.{r.finding.severity}"),
            name=r.account_name,
            account=r.account,
            score=r.finding.score,
        )
        print(line, file=out)
        for reason in r.finding.reasons:
            print(tr.t("cli.scan.reason", text=reason_text(tr, reason, names)), file=out)


def model_fields(scored: budget.Scored | None) -> dict[str, Any]:
    """What `health --json` adds from the churn model (null before one is trained). ``drivers`` stays
    the health score's deductions, as before; the model's drivers are ``churn_drivers``."""
    if scored is None:
        return {"churn_probability": None, "churn_band": None, "churn_drivers": []}
    params = scored.reason["params"]
    return {
        "churn_probability": round(scored.probability, 4),
        "churn_band": params["risk"],
        "churn_drivers": params["drivers"],
    }


def print_health(
    db: Database,
    rules: Rules,
    *,
    as_of: date,
    as_json: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    tr: Translator | None = None,
) -> int:
    """`app.py health`: every active account's score, scored up to the book's data-through day."""
    tr, out, err = tr or words("en"), out or sys.stdout, err or sys.stderr
    with db.session() as session:
        data = data_through(session, as_of, rules.health)
        names = rules.health.metric_names
        readings = list(health_all(session, as_of, rules.health, data=data))
        churn = budget.score_accounts(session, data.day, rules).get(CHURN, {}) if readings else {}
        rows = [{**h.as_json(names), **model_fields(churn.get(h.account_id))} for h in readings]
    if as_json:
        json.dump(rows, out, ensure_ascii=False, indent=2)
        out.write("\n")
        if data.age_days != 0:
            print(data_line(tr, data, rules.health), file=err)
        return 0
    print(tr.t("cli.health.title", as_of=day(tr, as_of), data=through(tr, data)), file=out)
    if data.age_days != 0:
        print(data_line(tr, data, rules.health), file=out)
    for r in rows:
        sep = tr.t("cli.health.drivers_sep")
        drivers = sep.join(reason_text(tr, d, names) for d in r["drivers"]) or tr.t("cli.none")
        own = r["last_data"]
        feed = ""
        if own and data.through and own < data.through.isoformat():
            feed = tr.t("cli.health.own_data", date=day(tr, date.fromisoformat(own)))
        line = tr.t(
            "cli.health.row",
            score="-" if r["score"] is None else str(r["score"]),
            band=tr.t(f"alert.band.{r['band']}"),
            name=r["name"],
            account=r["account_id"],
            feed=feed,
            drivers=drivers,
        )
        print(line, file=out)
    return 0
