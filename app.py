"""Baton's entry point.

python app.py serve     HTTP mode on $PORT (Socket Mode when SLACK_APP_TOKEN is set)
python app.py demo      seed a few accounts and show the cards Baton would post, no Slack needed
python app.py migrate   apply database migrations
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cli import EPILOGS, as_of_date, budget, day, encoding_name, progress_bar, reporter, words
from clock import local_date, utcnow
from settings import ConfigError, Settings
from storage import Database

if TYPE_CHECKING:
    from api.crm_webhook import Routes
    from bot.i18n import Translator

# The demo seeds sample customers: they go to a file of their own, never next to a team's real accounts.
DEMO_DATABASE_NAME = "baton-demo.db"  # in BATON_DATA_DIR: next to app.py, or the image's /data volume


def _serve(settings: Settings, db: Database) -> int:
    from bot.app import SlackReadiness, create_app, slack_check
    from bot.server import serve_http, serve_socket_mode

    missing = _missing_slack_settings(settings)
    if missing:
        print(
            f"serve needs {', '.join(missing)} (see README). Without Slack, try: python app.py demo",
            file=sys.stderr,
        )
        return 2

    kind, problem = slack_check(settings)
    if kind == "refused":  # a configuration error: waiting will not fix it
        print(problem, file=sys.stderr)
        return 2
    slack = SlackReadiness(settings, problem)
    if problem:  # an outage: serve /healthz (503) and the ingest API meanwhile, and keep asking
        print(f"{problem}; serving anyway, /healthz says 503 until Slack answers", file=sys.stderr)
        slack.retry_in_background()
    db.upgrade()
    _recover_imports(db)
    app = create_app(settings, db, verify_token=False)  # checked above: Bolt's own check would exit
    api = _routes(settings, db)
    _start_jobs(settings, db, app)
    if settings.slack_app_token:
        serve_socket_mode(app, db, settings.slack_app_token, settings.port, api, slack)
    else:
        serve_http(app, db, settings.port, api=api, slack_problem=slack.problem)
    return 0


def _missing_slack_settings(settings: Settings) -> list[str]:
    """The Slack settings serve cannot start without; Socket Mode (an app token) needs no signing secret."""
    missing = [
        n
        for n, v in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if not v
    ]
    if settings.slack_app_token:
        missing = [m for m in missing if m != "SLACK_SIGNING_SECRET"]
    return missing


def _recover_imports(db: Database) -> None:
    from storage.imports import recover

    for undone in recover(db, utcnow):  # an import a killed process left half-applied: all or nothing
        since = f"{undone.started_at:%F %R} UTC"
        print(f"rolled back signals import {undone.import_id} (unfinished since {since})")


def _routes(settings: Settings, db: Database) -> Routes:
    """The HTTP API beside Slack's: the ingest API, and HubSpot's webhook when HubSpot is on."""
    from api.crm_webhook import HubSpotWebhookAPI, Routes
    from api.ingest import IngestAPI
    from crm.cli import webhook_pass
    from crm.inbox import Coalesced
    from crm.sync import announce

    tz = settings.rules.schedule.timezone
    ingest_api = IngestAPI(db, token=settings.ingest_token, clock=utcnow, timezone=tz)
    hook = (
        HubSpotWebhookAPI(
            db,
            secret=settings.hubspot_client_secret,
            won_stages=settings.rules.crm.hubspot.won_stages,
            clock=utcnow,
            kick=Coalesced(lambda: webhook_pass(settings, db, clock=utcnow, on_won=announce)),
            public_url=settings.public_url,
        )
        if settings.hubspot_on
        else None
    )
    return Routes(ingest_api, hook)


def _start_jobs(settings: Settings, db: Database, app: Any) -> None:  # Any: only bot/ knows Slack's App
    """The scheduler's jobs: delivery, the CSM lookup, and the pull and CRM sync when configured."""
    from bot.delivery import Delivery
    from bot.directory import resolve_csm_emails
    from crm.cli import scheduled_pass
    from crm.sync import announce
    from ingest.pull import pull
    from jobs.scheduler import Jobs, build_scheduler

    tz = settings.rules.schedule.timezone
    crm_on = settings.hubspot_on or settings.salesforce_on
    jobs = Jobs(
        db,
        settings,
        utcnow,
        deliver=lambda: Delivery(db, app.client, settings, utcnow).run(),
        resolve=lambda: resolve_csm_emails(db, app.client, utcnow),
        pull=(lambda session: pull(session, settings.rules.pull, today=local_date(utcnow, tz)))
        if settings.rules.pull.url
        else None,
        crm_sync=(lambda: scheduled_pass(settings, db, clock=utcnow, on_won=announce)) if crm_on else None,
    )
    build_scheduler(jobs, settings).start()


_checked: dict[tuple[str, str], str | None] = {}


def _slack_problem(settings: Settings) -> str | None:
    """Slack's answer to the token, asked once per command however many steps need Slack."""
    from bot.app import slack_problem

    key = (settings.slack_bot_token, settings.slack_api_url)
    if key not in _checked:
        _checked[key] = slack_problem(settings)
    return _checked[key]


def _deliver(settings: Settings, db: Database) -> None:
    """Send what the command queued; when Slack refuses the token or cannot be reached, say so in one
    line: the messages stay in the outbox and the server's delivery loop sends them later."""
    from bot.app import make_client
    from bot.delivery import Delivery

    tr = words(settings.locale)
    if problem := _slack_problem(settings):
        print(tr.t("cli.slack.waiting", problem=problem), file=sys.stderr)
        return
    stats = Delivery(db, make_client(settings), settings, utcnow).run()
    print(tr.t("cli.slack.sent", sent=stats.sent, retried=stats.retried, dead=stats.dead), file=sys.stderr)


def _remind(settings: Settings, db: Database, as_of: date | None, *, as_json: bool, dry_run: bool) -> int:
    """`app.py remind`: what the daily cadence job does, by hand; each reminder is still sent once."""
    import json

    from handoff.reminders import queue

    db.upgrade()
    today = as_of or local_date(utcnow, settings.rules.schedule.timezone)
    if settings.slack_bot_token and not dry_run:  # reminders go to the CSMs csm_email names
        _resolve_csm_emails(settings, db)
    with db.session() as session:
        queued = queue(session, today, settings.rules, utcnow())
        if dry_run:
            session.rollback()
    if as_json:
        print(json.dumps([r.as_json() for r in queued.items], ensure_ascii=False, indent=2))
    else:
        tr = words(settings.locale)
        title = "cli.remind.title_dry" if dry_run else "cli.remind.title"
        counts = {"reminders": queued.reminders, "messages": queued.messages, "unowned": queued.unowned}
        print(tr.t(title, day=day(tr, today), **counts))
        for r in queued.items:
            print(
                tr.t(
                    "cli.remind.row",
                    due=day(tr, date.fromisoformat(r.due), today=today),
                    stage=tr.t(f"cli.stage.{r.stage}"),
                    touch=tr.t(f"touch.kind.{r.touch}"),
                    account=r.account,
                    to=r.recipient or tr.t("cli.remind.no_csm"),
                )
            )
    if settings.slack_bot_token and not dry_run:
        _deliver(settings, db)
    return 0


def _resolve_csm_emails(settings: Settings, db: Database) -> None:
    """Map the accounts' csm_email to Slack users (cached; only new or stale emails are looked up)."""
    from bot.app import make_client
    from bot.directory import resolve_csm_emails

    if problem := _slack_problem(settings):
        print(f"CSM emails not mapped to Slack users yet: {problem}", file=sys.stderr)
        return
    print(resolve_csm_emails(db, make_client(settings), utcnow), file=sys.stderr)


def _ingest_epilog() -> str:
    """Every kind's columns and an example, from the table the ingest code reads."""
    from ingest import layouts

    parts = []
    for kind, lay in layouts().items():
        parts.append(f"{kind}:\n  required: {', '.join(lay.required)}")
        if lay.optional:
            parts.append(f"  optional: {', '.join(lay.optional)}")
        if lay.note:
            parts.append(textwrap.fill(lay.note, 100, initial_indent="  ", subsequent_indent="    "))
        parts.append("  example:\n" + "".join(f"    {line}\n" for line in lay.example.splitlines()))
    parts.append(
        "Text: UTF-8 (with or without BOM) or Shift_JIS/CP932, detected; or give --encoding.\n"
        "Amounts: 120000, 120,000, ¥120,000, 120,000円, $1,200.50, full-width digits.\n"
        "Dates: 2026-11-30, 2026/11/30, 2026/1/5, 2026年11月30日, full-width digits.\n"
        "Prints what was stored (rows, accounts new and updated); a bar of the bytes read on a terminal.\n\n"
        "example:\n  python app.py ingest accounts accounts.csv --as-of 2026-11-30"
    )
    return "\n".join(parts)


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line with where to look, not the usage block and then it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_logs()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `app.py health --json | head`: the reader has all it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is quiet
        return 0
    except Exception as exc:
        if os.environ.get("BATON_DEBUG") == "1":
            raise
        print(f"{args.command} failed: {_one_line(exc, settings)}", file=sys.stderr)
        return 1


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    # waitress warns on every queued request under a burst; that is load, not an error, and floods logs
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


AS_OF_HELP = "score with data up to this day (default: yesterday in the team's timezone)"


def _parser() -> _Parser:
    """Every subcommand with its options; each --help says what it does, prints and an example."""
    parser = _Parser(prog="app.py", description="Baton: sales-to-CS handoff in Slack")
    subparsers = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, **kw: Any) -> argparse.ArgumentParser:
        """A subcommand whose --help says what it does, what it prints and an example (cli.EPILOGS)."""
        kw.setdefault("epilog", EPILOGS.get(name))
        return subparsers.add_parser(
            name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter, **kw
        )

    command("serve", help="run the Slack app (HTTP mode, or Socket Mode with SLACK_APP_TOKEN)")
    _demo_options(command("demo", help="seed sample data and print the cards Baton would post"))
    command("migrate", help="apply database migrations")
    _ingest_options(
        command(
            "ingest",
            help="load accounts, usage signals, company metrics or touches from a CSV or JSON-lines file",
            epilog=_ingest_epilog(),
        )
    )
    scan = command("scan", help="run one churn-risk / upsell scan")
    scan.add_argument("--as-of", type=as_of_date, help=AS_OF_HELP)
    scan.add_argument("--json", action="store_true", help="print the alerts raised as a JSON array")
    scan.add_argument("--dry-run", action="store_true", help="store nothing; show what would be raised")
    command("pull", help="pull usage signals once from the HTTP source configured in baton.yml")
    _digest_options(
        command("digest", help="the shared KPIs for the week (churn, retention, GRR, NRR, upsell)")
    )
    _remind_options(command("remind", help="queue today's touch, QBR and renewal reminders (the daily job)"))
    health = command("health", help="print every active account's health score")
    health.add_argument("--as-of", type=as_of_date, help=AS_OF_HELP)
    health.add_argument("--json", action="store_true", help="print the scores as a JSON array")
    _model_options(command("model", help="train, backtest or explain the churn and upsell models"))
    crm = command("crm", help="one pass over the CRMs: won deals (once each) and the accounts sync")
    crm.add_argument("action", choices=["sync"])
    crm.add_argument("--dry-run", action="store_true", help="record nothing; show what would be taken")
    crm.add_argument("--json", action="store_true", help="print what was done as one JSON object")
    return parser


def _demo_options(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--locale", choices=["en", "ja"], help="language of the cards (default BATON_LOCALE)")
    demo.add_argument(
        "--db",
        type=Path,
        help=f"the demo's own SQLite file, never your DATABASE_URL (default {DEMO_DATABASE_NAME} in "
        "BATON_DATA_DIR)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="reuse the demo data of the last run instead of starting over"
    )


def _ingest_options(ingest: argparse.ArgumentParser) -> None:
    ingest.add_argument("kind", choices=["accounts", "signals", "metrics", "touches"])
    ingest.add_argument("file", type=Path)
    ingest.add_argument("--as-of", type=as_of_date, help="the date an accounts file describes (YYYY-MM-DD)")
    ingest.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    ingest.add_argument(
        "--encoding", type=encoding_name, help="the file's text encoding, e.g. cp932 (default: detected)"
    )


def _digest_options(digest: argparse.ArgumentParser) -> None:
    digest.add_argument(
        "--as-of",
        type=as_of_date,
        help="report the week ending the day before this day, health scored with data up to then "
        "(default: today in the team's timezone)",
    )
    digest.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    digest.add_argument("--dry-run", action="store_true", help="print it and write the chart; do not post")
    digest.add_argument(
        "--chart", help="with --dry-run: where to write the chart (default baton-digest-DATE.png)"
    )


def _remind_options(remind: argparse.ArgumentParser) -> None:
    remind.add_argument(
        "--as-of",
        type=as_of_date,
        help="queue the reminders due on this day (default: today in the team's timezone)",
    )
    remind.add_argument("--json", action="store_true", help="print the reminders as a JSON array")
    remind.add_argument("--dry-run", action="store_true", help="record and send nothing; show what would go")


def _model_options(model: argparse.ArgumentParser) -> None:
    model.add_argument("action", choices=["train", "backtest", "explain"])
    model.add_argument("account", nargs="?", help="explain: the account's account_id or name")
    model.add_argument("--as-of", type=as_of_date, help=AS_OF_HELP)
    model.add_argument("--from", dest="start", type=as_of_date, help="backtest: the first Monday to score")
    model.add_argument("--budget", type=budget, help="alerts per 100 accounts per week (default 2)")
    model.add_argument("--gradient-boosting", action="store_true", help="backtest: also gradient boosting")
    model.add_argument("--json", action="store_true", help="print the result as JSON")
    model.add_argument("--png", help="backtest: where to write the chart (default baton-backtest.png)")


def _one_line(exc: Exception, settings: Settings) -> str:
    """A failure in words, one line, no traceback (BATON_DEBUG=1 shows it): what went wrong and the fix."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from settings import masked_url

    if isinstance(exc, OperationalError | ProgrammingError):
        where = masked_url(settings.database_url)
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"the database {where} answered: {first}. Check DATABASE_URL and that the database is up"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{text[:300]} ({type(exc).__name__}; BATON_DEBUG=1 shows the traceback)"


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo":
        return _demo(args, settings)
    db = Database(settings.database_url)
    if args.command == "serve":
        return _serve(settings, db)
    return COMMANDS[args.command](args, settings, db, words(settings.locale))


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    path: Path = args.db or settings.data_dir / DEMO_DATABASE_NAME
    if not args.keep:  # the same story every time, whatever an earlier run left
        path.unlink(missing_ok=True)
    demo_db = Database(f"sqlite:///{path.resolve()}")
    demo_db.upgrade()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the fake HubSpot's calls are the demo's story
    return run_demo(settings, demo_db, locale=args.locale or settings.locale, out=sys.stdout)


def _migrate(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    db.upgrade()
    print(tr.t("cli.migrate.done"))
    return 0


def _ingest(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    from alerts.cli import ingest_file

    db.upgrade()
    as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone)
    code = ingest_file(
        db,
        args.kind,
        args.file,
        as_of=as_of,
        fmt=args.format,
        clock=utcnow,
        timezone=settings.rules.schedule.timezone,
        encoding=args.encoding,
        tr=tr,
    )
    if code == 0 and args.kind == "accounts" and settings.slack_bot_token:
        _resolve_csm_emails(settings, db)
    return code


def _pull(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    from ingest import IngestError
    from ingest.pull import PullError, pull

    db.upgrade()
    try:
        with db.session() as session:
            today = local_date(utcnow, settings.rules.schedule.timezone)
            result = pull(session, settings.rules.pull, today=today)
    except PullError as exc:
        print(tr.t("cli.pull.failed", error=exc), file=sys.stderr)
        return 1
    except IngestError as exc:
        print(f"{tr.t('cli.pull.refused', bad=exc.bad)}\n{exc.report()}", file=sys.stderr)
        return 1
    print(tr.t("cli.pull.done", rows=result.rows))
    return 0


def _digest(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    import json

    from bot.i18n import translator
    from bot.render_text import render_blocks
    from bot.views.digest import chart_labels, digest_blocks
    from digest.report import STEPS, build

    db.upgrade()
    as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone)
    with db.session() as session, progress_bar(tr.t("cli.progress.steps"), total=STEPS) as bar:
        report = build(session, as_of, settings.rules, progress=reporter(bar))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(render_blocks(digest_blocks(translator(settings.locale), report)))
    if args.dry_run:
        from digest.chart import render

        chart = Path(args.chart or f"baton-digest-{as_of.isoformat()}.png")
        chart.write_bytes(render(report["trend"], chart_labels(translator(settings.locale))))
        print(tr.t("cli.digest.chart", path=chart))
    if settings.slack_bot_token and not args.dry_run:
        from storage.outbox import enqueue

        with db.session() as session:
            row = enqueue(session, None, "digest", utcnow(), report=report)
            session.flush()
            enqueue(session, None, "digest_chart", utcnow(), digest_row=row.id)
        _deliver(settings, db)
    return 0


def _remind_command(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    return _remind(settings, db, args.as_of, as_json=args.json, dry_run=args.dry_run)


def _scan(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    """``scan`` and ``health``: like the daily scan, complete days only, up to yesterday in the team's
    timezone."""
    from alerts.cli import print_health, run_scan

    db.upgrade()
    as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone, days_ago=1)
    if args.command == "health":
        return print_health(db, settings.rules, as_of=as_of, as_json=args.json, tr=tr)
    run_scan(db, settings.rules, as_of=as_of, clock=utcnow, as_json=args.json, dry_run=args.dry_run, tr=tr)
    if settings.slack_bot_token and not args.dry_run:  # without Slack the alerts wait in the outbox
        _deliver(settings, db)
    return 0


def _crm(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    from crm.cli import run_sync
    from crm.sync import announce

    db.upgrade()
    code = run_sync(settings, db, clock=utcnow, dry_run=args.dry_run, as_json=args.json, on_won=announce)
    if settings.slack_bot_token and not args.dry_run:  # the owners' "Start handoff" DMs; else they wait
        _deliver(settings, db)
    return code


def _model(args: argparse.Namespace, settings: Settings, db: Database, tr: Translator) -> int:
    from model.cli import run_model

    db.upgrade()
    return run_model(
        db,
        settings.rules,
        args.action,
        as_of=args.as_of or local_date(utcnow, settings.rules.schedule.timezone, days_ago=1),
        clock=utcnow,
        account=args.account,
        start=args.start,
        budget=args.budget,
        as_json=args.json,
        gradient_boosting=args.gradient_boosting,
        locale=settings.locale,
        png=args.png,
    )


# Each subcommand but serve and demo (which need no translator or own their database): its handler.
COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, Database, Translator], int]] = {
    "migrate": _migrate,
    "ingest": _ingest,
    "pull": _pull,
    "digest": _digest,
    "remind": _remind_command,
    "scan": _scan,
    "health": _scan,
    "model": _model,
    "crm": _crm,
}

if __name__ == "__main__":
    sys.exit(main())
