"""The weekly digest message: one page both teams read, every figure with last week's change."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from bot.i18n import Translator
from bot.text import Mrkdwn, escape
from bot.views.fields import context, divider, fields_section, header, section

_BAND_ICON = {"green": "🟢", "yellow": "🟡", "red": "🔴", "unknown": "⚪"}


def _field(label: str, value: str, note: str | None = None) -> Mrkdwn:
    text = f"*{escape(label)}*\n{escape(value)}"
    return Mrkdwn(text + (f"\n_{escape(note)}_" if note else ""))


def _pct(tr: Translator, key: str, report: dict[str, Any]) -> Mrkdwn:
    value, before = report.get(key), report.get("previous", {}).get(key)
    if value is None:
        return _field(tr.t(f"digest.{key}"), tr.t("digest.not_enough"))
    note = None
    if before is not None:
        diff = round(value - before, 1)
        note = tr.t(
            "digest.vs_last_week", change=("±0" if diff == 0 else f"{'▲' if diff > 0 else '▼'}{abs(diff)}pt")
        )
    return _field(tr.t(f"digest.{key}"), f"{value}%", note)


def _hours(tr: Translator, hours: float | None) -> str:
    return tr.t("digest.not_enough") if hours is None else tr.t("digest.hours", hours=hours)


def digest_blocks(tr: Translator, report: dict[str, Any]) -> list[dict[str, Any]]:
    as_of = date.fromisoformat(report["as_of"])
    month = date.fromisoformat(report["period"]["start"])
    month_label = f"{month.year}年{month.month}月" if tr.locale == "ja" else month.strftime("%B %Y")
    h, a, hl, r = report["handoffs"], report["alerts"], report["health"], report["renewals"]
    base = report["base_currency"]
    denominators = "; ".join(
        f"{tr.t(f'digest.{k}')}: {v}"
        for k, v in report["denominators"].items()
        if k in ("churn_rate", "grr", "nrr")
    )
    movers = "\n".join(
        f"• {escape(m['name'])}: {_BAND_ICON[m['from']]} → {_BAND_ICON[m['to']]} ({m['score']})"
        for m in hl["movers"]
    ) or escape(tr.t("digest.no_movers"))
    return [
        header("📊 " + tr.t("digest.header", date=tr.day(as_of))),
        section(Mrkdwn(f"*{escape(tr.t('digest.kpis', month=month_label))}*")),
        fields_section(
            [
                _pct(tr, k, report)
                for k in ("churn_rate", "customer_retention_rate", "grr", "nrr", "onboarding_completion_rate")
            ]
        ),
        context(tr.m("digest.denominators", text=denominators)),
        divider(),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.upsell'))}*"),
            fields=[
                _field(tr.t("digest.upsell_count"), str(report["upsell_count"])),
                _field(tr.t("digest.upsell_mrr"), tr.money(Decimal(str(report["upsell_mrr"])), base)),
                _field(tr.t("digest.upsell_opportunities"), str(report.get("upsell_opportunities") or 0)),
            ],
        ),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.handoffs'))}*"),
            fields=[
                _field(tr.t("digest.handoffs_created"), str(h["created"])),
                _field(tr.t("digest.handoffs_accepted"), str(h["accepted"])),
                _field(tr.t("digest.median_accept"), _hours(tr, h["median_hours_to_accept"])),
                _field(
                    tr.t("digest.completeness"),
                    tr.t("digest.not_enough")
                    if h["average_completeness_pct"] is None
                    else f"{h['average_completeness_pct']}%",
                ),
            ],
        ),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.alerts'))}*"),
            fields=[
                _field(tr.t("digest.alerts_raised"), str(a["raised"])),
                _field(tr.t("digest.alerts_acknowledged"), str(a["acknowledged"])),
                _field(tr.t("digest.alerts_resolved"), str(a["resolved"])),
                _field(tr.t("digest.median_ack"), _hours(tr, a["median_hours_to_acknowledge"])),
            ],
        ),
        section(
            Mrkdwn(
                f"*{escape(tr.t('digest.health'))}*  "
                + "  ".join(
                    f"{_BAND_ICON[b]} {escape(tr.t(f'alert.band.{b}'))} {n}" for b, n in hl["bands"].items()
                )
            )
        ),
        section(Mrkdwn(f"*{escape(tr.t('digest.movers'))}*\n{movers}")),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.renewals'))}*"),
            fields=[_field(tr.t("digest.days", days=n), str(r[f"next_{n}_days"])) for n in (30, 60, 90)],
        ),
    ]


def digest_text(tr: Translator, report: dict[str, Any]) -> Mrkdwn:
    return escape(tr.t("digest.header", date=tr.day(date.fromisoformat(report["as_of"]))))
