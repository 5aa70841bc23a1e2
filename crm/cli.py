"""`app.py crm sync [--dry-run] [--json]`: by hand, what the scheduled job does. For each CRM that
has credentials: one pass over won deals (each taken once; the owner's DM is queued by ``on_won``,
bot/'s seam) and the accounts sync, then what it did, one line each (or one JSON object)."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

import httpx

from cli import words
from clock import Clock, local_date
from crm import sync
from crm.http import CrmError
from crm.hubspot import HubSpot
from crm.salesforce import Salesforce
from ingest import IngestError
from settings import CrmRules, Settings
from storage import Database

if TYPE_CHECKING:
    from bot.i18n import Translator


def sources(
    settings: Settings, *, client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep
) -> list[HubSpot | Salesforce]:
    """The CRMs whose credentials are set, HubSpot first."""
    crm = settings.rules.crm
    out: list[HubSpot | Salesforce] = []
    if settings.hubspot_on:
        out.append(
            HubSpot(
                settings.hubspot_api_url,
                settings.hubspot_access_token,
                crm.hubspot,
                client=client,
                sleep=sleep,
                timezone=settings.rules.schedule.timezone,
            )
        )
    if settings.salesforce_on:
        out.append(
            Salesforce(
                settings.salesforce_login_url,
                settings.salesforce_client_id,
                settings.salesforce_client_secret,
                crm.salesforce,
                client=client,
                sleep=sleep,
            )
        )
    return out


def run_sync(
    settings: Settings,
    db: Database,
    *,
    clock: Clock,
    dry_run: bool = False,
    as_json: bool = False,
    crms: list[HubSpot | Salesforce] | None = None,
    on_won: sync.OnWon | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """One pass per CRM; a CRM that fails (refused token, rate limit, a refused accounts batch) is
    reported in one line and the others still run. 0 when every CRM went through, 1 if one failed,
    2 when no CRM is configured."""
    out, err = out or sys.stdout, err or sys.stderr
    tr = words(settings.locale)
    crms = sources(settings) if crms is None else crms
    if not crms:
        print(tr.t("cli.crm.none"), file=err)
        return 2
    rules = settings.rules.crm
    report: dict[str, Any] = {}
    code = 0
    for src in crms:
        entry: dict[str, Any] = report.setdefault(src.name, {"dry_run": dry_run})
        printed = None if as_json else out
        try:
            entry["won_deals"] = _won_deals(
                db, src, rules, clock=clock, on_won=on_won, dry_run=dry_run, tr=tr, out=printed
            )
            src_rules = rules.hubspot if src.name == "hubspot" else rules.salesforce
            if src_rules.sync_accounts:
                entry["accounts"] = _accounts(
                    db,
                    src,
                    src_rules.account_fields,
                    timezone=settings.rules.schedule.timezone,
                    clock=clock,
                    dry_run=dry_run,
                    tr=tr,
                    out=printed,
                )
        except IngestError as exc:
            code = 1
            entry["error"] = {"refused": exc.bad, "problems": [p.message for p in exc.problems]}
            print(f"{tr.t('cli.crm.refused', crm=src.name, bad=exc.bad)}\n{exc.report()}", file=err)
        except CrmError as exc:
            code = 1
            entry["error"] = str(exc)
            print(tr.t("cli.crm.failed", crm=src.name, error=exc), file=err)
        finally:
            entry["api_calls"] = src.calls
            if isinstance(src, Salesforce) and src.limit_info:
                entry["limit_info"] = src.limit_info
            src.close()
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2), file=out)
    return code


def _won_deals(
    db: Database,
    src: HubSpot | Salesforce,
    rules: CrmRules,
    *,
    clock: Clock,
    on_won: sync.OnWon | None,
    dry_run: bool,
    tr: Translator,
    out: IO[str] | None,
) -> dict[str, Any]:
    """One pass over the CRM's won deals: the watermark read in a short session, the CRM fetched with
    none open, then the deals recorded in one unit of work (rolled back for a dry run). Lines go to
    ``out`` unless it is None (JSON output); returns the pass's JSON."""
    with db.session() as session:
        since = sync.watermark(session, src.name, clock=clock, backfill_days=rules.backfill_days)
    fetched = sync.fetch(src, since, clock=clock)
    with db.session() as session:
        done = sync.record(session, fetched, clock=clock, on_won=on_won, dry_run=dry_run)
        if dry_run:
            session.rollback()
    won = done.as_json()
    if out is not None:
        title = "cli.crm.deals_dry" if dry_run else "cli.crm.deals"
        print(tr.t(title, crm=src.name, new=len(done.new), already=done.already), file=out)
        for d in done.new:
            print(
                tr.t(
                    "cli.crm.deal",
                    id=d.deal_id,
                    name=d.name,
                    account=d.account_name or "—",
                    owner=d.owner_email or "—",
                ),
                file=out,
            )
    return won


def _accounts(
    db: Database,
    src: HubSpot | Salesforce,
    fields: dict[str, str],
    *,
    timezone: str,
    clock: Clock,
    dry_run: bool,
    tr: Translator,
    out: IO[str] | None,
) -> dict[str, Any]:
    """The CRM's accounts into Baton (sync_accounts owns that unit of work). Lines go to ``out`` unless it
    is None (JSON output); returns the counts' JSON."""
    result = sync.sync_accounts(
        db,
        src.name,
        src.account_rows(),
        fields,
        clock=clock,
        timezone=timezone,
        as_of=local_date(clock, timezone),
        dry_run=dry_run,
    )
    counts = {"rows": result.rows, "created": result.created, "updated": result.updated}
    if out is not None:
        title = "cli.crm.accounts_dry" if dry_run else "cli.crm.accounts"
        print(
            tr.t(title, crm=src.name, rows=result.rows, created=result.created, updated=result.updated),
            file=out,
        )
    return counts


def scheduled_pass(
    settings: Settings,
    db: Database,
    *,
    clock: Clock,
    on_won: sync.OnWon | None = None,
    crms: list[HubSpot | Salesforce] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """What the scheduled job runs every ``crm.poll_minutes``: the deals HubSpot webhooks named, then
    the same pass as `app.py crm sync`. Returns one line for the job ledger and the log."""
    parts = [line] if (line := webhook_pass(settings, db, clock=clock, on_won=on_won, sleep=sleep)) else []
    out, err = io.StringIO(), io.StringIO()
    code = run_sync(settings, db, clock=clock, as_json=True, crms=crms, on_won=on_won, out=out, err=err)
    for name, entry in (json.loads(out.getvalue() or "{}") or {}).items():
        deals, accounts = entry.get("won_deals") or {}, entry.get("accounts") or {}
        line = f"{name}: {len(deals.get('new') or [])} new, {deals.get('already_taken', 0)} seen before"
        if accounts:
            line += f", {accounts.get('rows', 0)} accounts"
        if entry.get("error"):
            line += f", failed: {entry['error']}"
        parts.append(line)
    if code == 2:
        parts.append("no CRM is configured")
    with db.session() as session:  # DMs left unanswered for crm.nudge_hours: owner nudged, lead told
        hours = settings.rules.crm.nudge_hours
        nudged = sync.queue_nudges(session, now=clock(), after=timedelta(hours=hours))
    if nudged:
        parts.append(f"{nudged} unanswered won deal(s) nudged")
    return "; ".join(parts)


def webhook_pass(
    settings: Settings,
    db: Database,
    *,
    clock: Clock,
    on_won: sync.OnWon | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The deals HubSpot webhooks named since the last pass (crm/inbox.py); the webhook route starts
    one in the background, and every scheduled pass runs one first. Returns one line, empty if idle."""
    from crm import inbox

    if not settings.hubspot_on:
        return ""
    hs = next(s for s in sources(settings, sleep=sleep) if isinstance(s, HubSpot))
    try:
        done = inbox.take(db, hs, clock=clock, on_won=on_won)
    except CrmError as exc:
        return f"webhook: {exc}"
    finally:
        hs.close()
    return f"webhook: {len(done.new)} won deal(s) taken, {done.already} seen before" if done else ""
