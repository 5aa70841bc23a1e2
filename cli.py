"""What app.py's subcommands share: argument types (a bad value is one line naming the form expected),
progress bars on a terminal, and the terminal's words in BATON_LOCALE."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import date
from typing import IO, TYPE_CHECKING

from tqdm import tqdm

from ingest.textfile import codec_for
from ingest.values import parse_date

if TYPE_CHECKING:
    from bot.i18n import Translator


def as_of_date(text: str) -> date:
    """`--as-of`: YYYY-MM-DD (2026/11/30 too, as in the files)."""
    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-30") from None


def budget(text: str) -> float:
    """`--budget`: alerts per 100 accounts per week, a number above 0 and at most 100."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r}: give alerts per 100 accounts per week, e.g. 2")
    return value


def encoding_name(text: str) -> str:
    """`--encoding`: a text encoding Python knows; Shift_JIS reads as CP932, as Windows writes it."""
    try:
        return codec_for(text)
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an encoding Baton knows: use utf-8 or cp932 (Shift_JIS from Excel in Japan)"
        ) from None


def words(locale: str) -> Translator:
    """The terminal's words in BATON_LOCALE: bot/templates/{en,ja}/cli.yml, through the UI's one catalog."""
    from bot.i18n import translator

    return translator(locale)


def day(tr: Translator, value: date | None, *, today: date | None = None) -> str:
    """A date as the language writes it (cli.date): 2026-11-30, or 2026年11月30日 and 11月30日 in
    Japanese, where the year is left out when it is ``today``'s."""
    if value is None:
        return tr.t("cli.none")
    key = "cli.date_short" if today is not None and today.year == value.year else "cli.date"
    return tr.t(key, iso=value.isoformat(), year=value.year, month=value.month, day=value.day)


def progress_bar(unit: str, *, total: int | None = None, file: IO[str] | None = None) -> tqdm:
    """A tqdm bar on stderr, drawn on a terminal only (tqdm's ``disable=None``) unless BATON_PROGRESS=1
    asks for it anyway: piped or logged output stays the result alone."""
    forced = os.environ.get("BATON_PROGRESS") == "1"
    return tqdm(
        total=total,
        unit=unit,
        file=file if file is not None else sys.stderr,
        disable=False if forced else None,
        mininterval=0.25,
        leave=True,
    )


def reporter(bar: tqdm) -> Callable[[int], None]:
    """The ``progress(done)`` callback a domain function takes, moving ``bar`` to ``done``."""

    def progress(done: int) -> None:
        bar.update(done - bar.n)

    return progress


# `app.py COMMAND --help`: what each command does, what it prints, and one example (ingest builds its own
# from the columns the ingest code reads: app._ingest_epilog).
EPILOGS = {
    "serve": """\
Runs Baton for Slack: the HTTP endpoint on $PORT (or Socket Mode when SLACK_APP_TOKEN is set), the
ingest API, and the scheduled jobs (daily scan, reminders, weekly digest, pull, delivery). It applies
migrations first and checks the Slack token before it listens.

needs: SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)

example:
  SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... python app.py serve""",
    "demo": """\
Seeds a few sample accounts in a database of its own (never DATABASE_URL) and prints the handoff,
alert and digest messages Baton would post, as text. No Slack needed; it starts over each run.

example:
  python app.py demo --locale ja""",
    "migrate": """\
Brings the database at DATABASE_URL to the latest schema (serve and the other commands do this too).
Prints one line when it is done; running it again changes nothing.

example:
  DATABASE_URL=postgresql://baton@localhost/baton python app.py migrate""",
    "pull": """\
Fetches usage signals once from the HTTP source in baton.yml (pull.url) and stores them, as the
scheduled pull job does. A bad record refuses the whole pull: nothing is written.

prints: the number of signal values stored

example:
  python app.py pull""",
    "crm": """\
One pass over each CRM whose credentials are set (HUBSPOT_ACCESS_TOKEN; SALESFORCE_CLIENT_ID and
SALESFORCE_CLIENT_SECRET): deals won since the last pass are taken once each (a deal seen again is
skipped), then the CRM's accounts go through the same ingest as an accounts file (crm: in baton.yml
maps their fields). A CRM that fails is reported in one line; the others still run.

prints: per CRM, the won deals taken and the accounts synced (--json: one object)

example:
  python app.py crm sync --dry-run""",
    "scan": """\
Scores every active account and raises churn-risk and upsell alerts, as the daily job does; their Slack
cards wait in the outbox and are sent when SLACK_BOT_TOKEN is set. Shows a progress bar of the accounts
scored on a terminal (BATON_PROGRESS=1 forces it).

prints: a summary line (as-of day, usage data through, accounts, alerts raised), a line when the data is
  late, then per alert: change (new, worsened), kind, severity, account name and id, score, and reasons
--json: an array of {account_id, name, kind, severity, score, change, alert_id, data_through,
  reasons: [{code, params, text}]}; the data-late line goes to stderr

example:
  python app.py scan --as-of 2026-11-30 --dry-run""",
    "health": """\
Prints every active account's health score, scored with usage data up to the as-of day (or the book's
latest day with signals, when the export is late). Stores nothing.

prints: score (0-100, - without data), band (green, yellow, red, unknown), name (account id), and the
  drivers that cost points; "own data through" when one account's feed stopped before the others
--json: an array of {account_id, name, score, band, data_through, last_data,
  drivers: [{factor, points, code, params, text}]}

example:
  python app.py health --as-of 2026-11-30 --json""",
    "digest": """\
Builds the weekly KPI digest (churn, retention, GRR, NRR, MRR, upsell, handoffs, alerts, health bands,
renewals, the 12-week chart) and, with SLACK_BOT_TOKEN, posts it to the digest channel as the weekly job
does. Shows a progress bar of its steps on a terminal (BATON_PROGRESS=1 forces it).

prints: the digest as text in BATON_LOCALE
--json: one object: the KPIs (churn_rate, customer_retention_rate, grr, nrr, mrr, upsell_count, ...),
  previous, periods, handoffs, alerts, funnel, health, renewals, trend

example:
  python app.py digest --as-of 2026-12-07 --dry-run --chart digest.png""",
    "remind": """\
Queues the touch, QBR and renewal reminders due today for each CSM, as the daily job does; a reminder is
sent once, however often this runs. Sent to Slack when SLACK_BOT_TOKEN is set.

prints: a summary line (reminders, messages, how many for accounts without a CSM), then per reminder:
  due date, stage (due, overdue, QBR due, QBR overdue, renewal), touch, account and who hears it
--json: an array of {account_id, name, recipient, stage, touch, due, tier, days_left}

example:
  python app.py remind --as-of 2026-11-30 --dry-run""",
    "model": """\
Churn and upsell models learned from the stored history (accounts files, daily signals, touches).
  train     fit both models on the weeks whose 90-day outcome is known and store them (versioned)
  backtest  replay the history week by week: the model trained on earlier weeks against the rules'
            health score on the same accounts; AUC, lift, churns caught 7-90 days ahead at the budget
  explain   an account's churn and upsell probability with every driver, value against typical
Needs enough outcomes: 20 churns (upgrades) in weeks whose 90-day outcome is known.

examples:
  python app.py model train
  python app.py model backtest --from 2026-01-05 --json
  python app.py model explain C-0042""",
}
