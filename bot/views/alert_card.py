"""The churn-risk / upsell alert card, its thread notes and the inside-sales post."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from typing import Any

from bot.i18n import Translator
from bot.ids import Action, Block
from bot.text import Mrkdwn, escape, mention, slack_date
from bot.views.fields import button, context, fields_section, header, section, text_obj
from clock import local_day
from settings import MetricNames, Rules, metric_name
from storage.models import Account, Alert

_ICON = {"churn_risk": "🔥", "upsell": "📈"}
# Red is for bad news: churn keeps the band colours, a strong upsell is good news and says so.
_SEVERITY_ICON = {
    "churn_risk": {"high": "🔴", "medium": "🟡"},
    "upsell": {"high": "🟢", "medium": "💡"},
}


def reason_text(tr: Translator, reason: dict[str, Any], names: MetricNames | None = None) -> str:
    """A stored reason in the reader's language: metrics by display name, dates as people write them."""
    params = dict(reason.get("params") or {})
    if reason.get("code") == "usage_growth":  # stored before it recorded its window: the default one
        params.setdefault("recent_days", 7)
    if "band" in params:
        params["band"] = tr.t(f"alert.band.{params['band']}")
    if "risk" in params:  # the model's reading: its band, and the top drivers in the reader's language
        params["risk"] = tr.t(f"reason.risk.{params['risk']}")
        key = "text_ja" if tr.locale.startswith("ja") else "text"
        params["drivers"] = tr.t("reason.driver_sep").join(
            str(d.get(key, "")) for d in params.get("drivers", [])
        )
    if "metric" in params:
        params["metric"] = metric_name(str(params["metric"]), tr.locale, names)
    if isinstance(params.get("date"), str):
        with contextlib.suppress(ValueError):  # an ISO date; anything else is shown as it is
            params["date"] = tr.day(date.fromisoformat(params["date"]))
    try:
        return tr.t(f"reason.{reason['code']}", **params)
    except (KeyError, IndexError):
        return str(reason.get("code"))


def reasons_block(
    tr: Translator, reasons: list[dict[str, Any]], names: MetricNames | None = None
) -> dict[str, Any]:
    lines = "\n".join(f"• {escape(reason_text(tr, r, names))}" for r in reasons[:20])
    return section(Mrkdwn(f"*{escape(tr.t('alert.why'))}*\n{lines}"))


def _owner(tr: Translator, alert: Alert) -> Mrkdwn:
    return mention(alert.owner_user_id) if alert.owner_user_id else escape(tr.t("alert.owner_none"))


def _until(tr: Translator, when: datetime, day: date) -> Mrkdwn:
    """A snooze's end: the team's day as the fallback, each reader's own day where Slack renders it."""
    return slack_date(when, tr.day(day), "{date_short_pretty}")


def _state(tr: Translator, alert: Alert, timezone: str) -> Mrkdwn:
    """The state and who put it there; the acknowledger stays on the card after later actions."""
    text = escape(tr.t(f"alert.state.{alert.state}"))
    if alert.state == "acknowledged" and alert.acknowledged_by:
        text = Mrkdwn(f"{text} · {mention(alert.acknowledged_by)}")
    if alert.state == "snoozed" and alert.snoozed_until:
        until = _until(tr, alert.snoozed_until, local_day(alert.snoozed_until, timezone))  # the team's day
        if alert.snoozed_by:
            detail = tr.m("alert.snoozed_by", until=until, user=mention(alert.snoozed_by))
        else:  # snoozed before Baton recorded who
            detail = until
        text = Mrkdwn(f"{text} · {detail}")
    if alert.state == "resolved" and alert.resolved_by:
        text = Mrkdwn(f"{text} · {mention(alert.resolved_by)}")
    if alert.state != "acknowledged" and alert.acknowledged_by:
        text = Mrkdwn(f"{text}\n{tr.m('alert.acknowledged_by', user=mention(alert.acknowledged_by))}")
    if alert.handed_to_is_at:
        text = Mrkdwn(f"{text}\n{escape(tr.t('alert.handed_to_is'))}")
    return text


def alert_card(tr: Translator, alert: Alert, account: Account, *, rules: Rules) -> list[dict[str, Any]]:
    """The card; ``alert.as_of`` is the day it was scored on, the day the usage data went up to."""
    names, timezone = rules.health.metric_names, rules.schedule.timezone
    severity_label = "alert.priority" if alert.kind == "upsell" else "alert.severity"
    icon = _SEVERITY_ICON.get(alert.kind, _SEVERITY_ICON["churn_risk"]).get(alert.severity, "")
    blocks: list[dict[str, Any]] = [
        header(f"{_ICON.get(alert.kind, '')} " + tr.t(f"alert.header.{alert.kind}", account=account.name)),
        fields_section(
            [
                Mrkdwn(
                    f"*{escape(tr.t(severity_label))}*\n{icon} "
                    f"{escape(tr.t(f'alert.severity.{alert.severity}'))}"
                ),
                Mrkdwn(
                    f"*{escape(tr.t('alert.health'))}*\n{escape('-' if alert.score is None else alert.score)}"
                ),
                Mrkdwn(f"*{escape(tr.t('alert.state'))}*\n{_state(tr, alert, timezone)}"),
                Mrkdwn(f"*{escape(tr.t('alert.owner'))}*\n{_owner(tr, alert)}"),
            ]
        ),
        reasons_block(tr, alert.reasons, names),
        context(tr.m("alert.as_of", date=tr.day(alert.as_of), renewal=tr.day(account.renewal_date))),
    ]
    if alert.state != "resolved":
        elements: list[dict[str, Any]] = []
        if alert.state == "open":
            elements.append(button(tr.t("alert.ack"), Action.ALERT_ACK, str(alert.id), "primary"))
        select: dict[str, Any] = {
            "type": "users_select",
            "action_id": Action.ALERT_ASSIGN,
            "placeholder": text_obj(tr.t("alert.assign"), 150),
        }
        if alert.owner_user_id:
            select["initial_user"] = alert.owner_user_id
        elements.append(select)
        if alert.kind == "upsell" and not alert.handed_to_is_at:
            elements.append(
                button(tr.t("alert.hand_to_is"), Action.ALERT_HAND_TO_IS, str(alert.id), "primary")
            )
        if alert.state != "snoozed":
            elements.append(
                button(
                    tr.t("alert.snooze", days=rules.alerts.snooze_days), Action.ALERT_SNOOZE, str(alert.id)
                )
            )
        elements.append(button(tr.t("alert.resolve"), Action.ALERT_RESOLVE, str(alert.id)))
        blocks.append(
            {"type": "actions", "block_id": f"{Block.ALERT_ACTIONS}:{alert.id}", "elements": elements}
        )
    return blocks


def alert_text(tr: Translator, alert: Alert, account: Account) -> Mrkdwn:
    return escape(tr.t(f"alert.header.{alert.kind}", account=account.name))


def thread_note(tr: Translator, payload: dict[str, Any], names: MetricNames | None = None) -> Mrkdwn:
    note = payload.get("note")
    if note == "assigned":
        return tr.m(
            "alert.thread.assigned", actor=mention(payload.get("actor")), owner=mention(payload.get("owner"))
        )
    if note == "snoozed":
        until = _until(tr, datetime.fromisoformat(payload["until"]), date.fromisoformat(payload["day"]))
        return tr.m("alert.thread.snoozed", actor=mention(payload.get("actor")), until=until)
    lines = "\n".join(f"• {escape(reason_text(tr, r, names))}" for r in payload.get("reasons") or [])
    return Mrkdwn(f"{escape(tr.t(f'alert.thread.{note}'))}\n{lines}")


def inside_sales_post(
    tr: Translator,
    alert: Alert,
    account: Account,
    actor: str,
    permalink: str | None,
    names: MetricNames | None = None,
) -> list[dict[str, Any]]:
    intro = tr.m("alert.is.intro", actor=mention(actor))
    blocks = [
        header("📈 " + tr.t("alert.is.header", account=account.name)),
        section(intro),
        reasons_block(tr, alert.reasons, names),
    ]
    facts = (
        f"{escape(account.plan or '-')} · {escape(tr.money(account.mrr, account.currency))} MRR · "
        f"{escape(account.seats if account.seats is not None else '-')} seats"
    )
    if permalink and not set(permalink) & set("|<> "):
        facts += f" · <{permalink}|alert>"
    blocks.append(context(Mrkdwn(facts)))
    return blocks
