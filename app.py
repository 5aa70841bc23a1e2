"""Baton's entry point.

python app.py serve     HTTP mode on $PORT (Socket Mode when SLACK_APP_TOKEN is set)
python app.py demo      seed a few accounts and show the cards Baton would post, no Slack needed
python app.py migrate   apply database migrations
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from datetime import date
from pathlib import Path

from cli import as_of_date, encoding_name
from clock import local_date, utcnow
from settings import ConfigError, Settings
from storage import Database


def _serve(settings: Settings, db: Database) -> int:
    from bot.app import create_app
    from bot.server import serve_http, serve_socket_mode

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
    if missing:
        print(
            f"serve needs {', '.join(missing)} (see README). Without Slack, try: python app.py demo",
            file=sys.stderr,
        )
        return 2
    from alerts.pull import pull
    from api.ingest import IngestAPI
    from bot.delivery import Delivery
    from jobs.scheduler import Jobs, build_scheduler

    db.upgrade()
    app = create_app(settings, db)
    api = IngestAPI(db, token=settings.ingest_token, clock=utcnow, timezone=settings.rules.schedule.timezone)
    jobs = Jobs(
        db,
        settings,
        utcnow,
        deliver=lambda: Delivery(db, app.client, settings, utcnow).run(),
        pull=(lambda: pull(db, settings.rules.pull)) if settings.rules.pull.url else None,
    )
    build_scheduler(jobs, settings).start()
    if settings.slack_app_token:
        serve_socket_mode(app, db, settings.slack_app_token, settings.port, api)
    else:
        serve_http(app, db, settings.port, api=api)
    return 0


def _remind(settings: Settings, db: Database, as_of: date | None, *, as_json: bool, dry_run: bool) -> int:
    """`app.py remind`: what the daily cadence job does, by hand; each reminder is still sent once."""
    import json

    from handoff.reminders import queue

    db.upgrade()
    day = as_of or local_date(utcnow, settings.rules.schedule.timezone)
    with db.session() as session:
        queued = queue(session, day, settings.rules, utcnow())
        if dry_run:
            session.rollback()
    if as_json:
        print(json.dumps([r.payload() for r in queued.items], ensure_ascii=False, indent=2))
    else:
        print(f"Reminders for {day.isoformat()}: {'would queue' if dry_run else 'queued'} {queued}")
        for r in queued.items:
            to = r.recipient or "(no CSM: handoff channel)"
            print(f"  {r.due}  {r.stage:<11} {r.touch:<11} {r.account}  -> {to}")
    if settings.slack_bot_token and not dry_run:
        from bot.app import make_client
        from bot.delivery import Delivery

        stats = Delivery(db, make_client(settings), settings, utcnow).run()
        print(f"sent to Slack: {stats.sent}, retrying later: {stats.retried}", file=sys.stderr)
    return 0


def _ingest_epilog() -> str:
    """Every kind's columns and an example, from the table the ingest code reads."""
    from alerts.ingest import layouts

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
        "Dates: 2026-11-30, 2026/11/30, 2026/1/5, 2026年11月30日, full-width digits."
    )
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Baton: sales-to-CS handoff in Slack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the Slack app (HTTP mode, or Socket Mode with SLACK_APP_TOKEN)")
    demo = sub.add_parser("demo", help="seed sample data and print the cards Baton would post")
    demo.add_argument("--locale", choices=["en", "ja"], help="language of the cards (default BATON_LOCALE)")
    sub.add_parser("migrate", help="apply database migrations")
    ingest = sub.add_parser(
        "ingest",
        help="load accounts, usage signals, company metrics or touches from a CSV or JSON-lines file",
        epilog=_ingest_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("kind", choices=["accounts", "signals", "metrics", "touches"])
    ingest.add_argument("file", type=Path)
    ingest.add_argument("--as-of", type=as_of_date, help="the date an accounts file describes (YYYY-MM-DD)")
    ingest.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
    ingest.add_argument(
        "--encoding", type=encoding_name, help="the file's text encoding, e.g. cp932 (default: detected)"
    )
    scan = sub.add_parser("scan", help="run one churn-risk / upsell scan")
    scan.add_argument("--as-of", type=as_of_date, help="use only data up to this date (default today)")
    scan.add_argument("--json", action="store_true", help="print the alerts raised as a JSON array")
    scan.add_argument("--dry-run", action="store_true", help="store nothing; show what would be raised")
    sub.add_parser("pull", help="pull usage signals once from the HTTP source configured in baton.yml")
    digest = sub.add_parser(
        "digest", help="the shared KPIs for the week (churn, retention, GRR, NRR, upsell)"
    )
    digest.add_argument("--as-of", type=as_of_date, help="default: today in the team's timezone")
    digest.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    digest.add_argument("--dry-run", action="store_true", help="print it and write the chart; do not post")
    digest.add_argument(
        "--chart", help="with --dry-run: where to write the chart (default baton-digest-DATE.png)"
    )
    remind = sub.add_parser("remind", help="queue today's touch, QBR and renewal reminders (the daily job)")
    remind.add_argument("--as-of", type=as_of_date, help="default: today in the team's timezone")
    remind.add_argument("--json", action="store_true", help="print the reminders as a JSON array")
    remind.add_argument("--dry-run", action="store_true", help="record and send nothing; show what would go")
    health = sub.add_parser("health", help="print every active account's health score")
    health.add_argument("--as-of", type=as_of_date)
    health.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    # waitress warns on every queued request under a burst; that is load, not an error, and floods logs
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    if args.command == "serve":
        return _serve(settings, db)
    if args.command == "migrate":
        db.upgrade()
        print("database is at the latest migration")
        return 0
    if args.command == "ingest":
        from alerts.cli import ingest_file

        db.upgrade()
        as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone)
        return ingest_file(
            db,
            args.kind,
            args.file,
            as_of=as_of,
            fmt=args.format,
            clock=utcnow,
            timezone=settings.rules.schedule.timezone,
            encoding=args.encoding,
        )
    if args.command == "pull":
        from alerts.ingest import IngestError
        from alerts.pull import PullError, pull

        db.upgrade()
        try:
            result = pull(db, settings.rules.pull)
        except PullError as exc:
            print(f"pull failed: {exc}", file=sys.stderr)
            return 1
        except IngestError as exc:
            print(f"pull refused, nothing written. {exc.bad} bad record(s):\n{exc.report()}", file=sys.stderr)
            return 1
        print(f"pulled {result.rows:,} signal values")
        return 0
    if args.command == "digest":
        import json

        from bot.i18n import translator
        from bot.render_text import render_blocks
        from bot.views.digest import chart_labels, digest_blocks
        from digest.report import build

        db.upgrade()
        as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone)
        with db.session() as session:
            report = build(session, as_of, settings.rules)
        if args.json:
            print(json.dumps(report, ensure_ascii=False, indent=2))
            return 0
        print(render_blocks(digest_blocks(translator(settings.locale), report)))
        if args.dry_run:
            from digest.chart import render

            chart = Path(args.chart or f"baton-digest-{as_of.isoformat()}.png")
            chart.write_bytes(render(report["trend"], chart_labels(translator(settings.locale))))
            print(f"chart written to {chart}")
        if settings.slack_bot_token and not args.dry_run:
            from bot.app import make_client
            from bot.delivery import Delivery
            from storage.outbox import enqueue

            with db.session() as session:
                row = enqueue(session, None, "digest", utcnow(), report=report)
                session.flush()
                enqueue(session, None, "digest_chart", utcnow(), digest_row=row.id)
            stats = Delivery(db, make_client(settings), settings, utcnow).run()
            print(f"posted to Slack: {stats.sent}, retrying later: {stats.retried}", file=sys.stderr)
        return 0
    if args.command == "remind":
        return _remind(settings, db, args.as_of, as_json=args.json, dry_run=args.dry_run)
    if args.command in ("scan", "health"):
        from alerts.cli import print_health, run_scan

        db.upgrade()
        # like the daily scan: complete days only, up to yesterday in the team's timezone
        as_of = args.as_of or local_date(utcnow, settings.rules.schedule.timezone, days_ago=1)
        if args.command == "health":
            return print_health(db, settings.rules, as_of=as_of, as_json=args.json)
        run_scan(db, settings.rules, as_of=as_of, clock=utcnow, as_json=args.json, dry_run=args.dry_run)
        if settings.slack_bot_token and not args.dry_run:  # without Slack the alerts wait in the outbox
            from bot.app import make_client
            from bot.delivery import Delivery

            stats = Delivery(db, make_client(settings), settings, utcnow).run()
            print(
                f"delivered to Slack: {stats.sent}, retrying later: {stats.retried}, failed: {stats.dead}",
                file=sys.stderr,
            )
        return 0
    from bot.demo import run_demo

    db.upgrade()
    return run_demo(settings, db, locale=args.locale or settings.locale, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
