"""The App Home tab, for the viewing user: their accounts with health and the next touch, the open
alerts on them, their handoffs, and how to use Baton."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.i18n import Translator
from bot.ids import Action
from bot.text import Mrkdwn, escape, link
from bot.views.alert_card import reason_text
from bot.views.fields import button, context, divider, header, section
from bot.views.handoff_card import list_blocks
from bot.views.touches import log_value
from settings import MetricNames
from storage.models import Alert, Handoff

_BAND = {"green": "🟢", "yellow": "🟡", "red": "🔴", "unknown": "⚪"}


@dataclass(frozen=True)
class AccountLine:
    name: str
    band: str
    score: int | None
    next_kind: str | None = None
    next_due: date | None = None
    account_id: int | None = None
    permalink: str | None = None  # the account's latest handoff card


def home_view(
    tr: Translator,
    handoffs: Sequence[Handoff],
    total: int,
    *,
    today: date,
    accounts: Sequence[AccountLine] = (),
    alerts: Sequence[tuple[Alert, str]] = (),
    metric_names: MetricNames | None = None,
    help_text: Mrkdwn,
) -> dict[str, Any]:
    """``help_text`` is `/handoff`'s help, rendered from the command's own table."""
    blocks: list[dict[str, Any]] = [header(tr.t("home.accounts"))]
    if not accounts:
        blocks.append(context(tr.m("home.no_accounts")))
    for a in accounts[:25]:
        line = f"{_BAND[a.band]} {link(a.permalink, a.name)} · {escape('-' if a.score is None else a.score)}"
        if a.next_kind and a.next_due:
            key = "home.overdue" if a.next_due < today else "home.next_touch"
            when = tr.day(a.next_due, today=today)
            line += " · " + escape(tr.t(key, kind=tr.t(f"touch.kind.{a.next_kind}"), date=when))
        if a.account_id is None:
            blocks.append(context(Mrkdwn(line)))
            continue
        row = section(Mrkdwn(line))
        row["accessory"] = button(
            tr.t("touch.log"), Action.LOG_TOUCH, log_value(a.account_id, a.next_kind or "check_in")
        )
        blocks.append(row)
    blocks += [header(tr.t("home.alerts"))]
    if not alerts:
        blocks.append(context(tr.m("home.no_alerts")))
    for alert, name in alerts[:15]:
        why = reason_text(tr, alert.reasons[0], metric_names) if alert.reasons else ""
        blocks.append(
            context(
                Mrkdwn(
                    f"{link(alert.permalink, tr.t(f'alert.header.{alert.kind}', account=name))} · "
                    f"{escape(tr.t(f'alert.state.{alert.state}'))} · {escape(why)}"
                )
            )
        )
    blocks += [divider(), *list_blocks(tr, handoffs[:25], total), divider(), section(help_text)]
    return {"type": "home", "blocks": blocks[:100]}
