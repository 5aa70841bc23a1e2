"""The weekly digest message: one page both teams read, every figure with last week's change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from bot.i18n import Translator
from bot.text import Mrkdwn, escape
from bot.views.fields import context, divider, fields_section, header, section
from digest.chart import Labels

_BAND_ICON = {"green": "🟢", "yellow": "🟡", "red": "🔴", "unknown": "⚪"}
Fmt = Callable[[float], str]


def _field(label: str, value: str, note: str | None = None) -> Mrkdwn:
    text = f"*{escape(label)}*\n{escape(value)}"
    return Mrkdwn(text + (f"\n_{escape(note)}_" if note else ""))


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _change(tr: Translator, value: float | None, before: float | None, fmt: Fmt = _plain) -> str | None:
    """ "▲2.5pt vs last week"; None when either week has no figure."""
    if value is None or before is None:
        return None
    diff = round(float(value) - float(before), 1)
    if diff == 0:
        return tr.t("digest.vs_last_week", change="±0")
    return tr.t("digest.vs_last_week", change=("▲" if diff > 0 else "▼") + fmt(abs(diff)))


def _figure(
    tr: Translator, label: str, part: dict[str, Any], key: str, fmt: Fmt = _plain, extra: str = ""
) -> Mrkdwn:
    """One figure of ``part`` with its change from ``part["previous"]``; "not enough data" when None."""
    value, before = part.get(key), (part.get("previous") or {}).get(key)
    if value is None:
        return _field(label, tr.t("digest.not_enough"))
    return _field(label, fmt(value) + extra, _change(tr, value, before, fmt))


def _percent(value: float) -> str:
    return f"{value}%"  # already rounded to one decimal: 25.0%, as the JSON says


def _pct(tr: Translator, key: str, part: dict[str, Any], label: str | None = None) -> Mrkdwn:
    """A rate: its change is in percentage points."""
    value, before = part.get(key), (part.get("previous") or {}).get(key)
    label = label or tr.t(f"digest.{key}")
    if value is None:
        return _field(label, tr.t("digest.not_enough"))
    return _field(label, _percent(value), _change(tr, value, before, lambda d: f"{d:g}pt"))


def _funnel(tr: Translator, f: dict[str, Any]) -> list[dict[str, Any]]:
    title = section(Mrkdwn(f"*{escape(tr.t('digest.funnel'))}*"))
    if not f["has_funnel"]:
        return [title, context(tr.m("digest.funnel_none"))]
    stage = [("visitors", None), ("leads", "acquisition_rate"), ("opportunities", "opportunity_rate")]
    stage += [("wins", "win_rate"), ("renewals", "renewal_rate")]
    fields = []
    for metric, rate in stage:
        fields.append(_figure(tr, tr.t(f"digest.m.{metric}"), f, metric))
        if rate:
            fields.append(_pct(tr, rate, f, tr.t(f"digest.m.{rate}")))
    return [title, fields_section(fields[:10])]


def _inside_sales(tr: Translator, f: dict[str, Any]) -> list[dict[str, Any]]:
    if not f["has_inside_sales"]:
        return []
    minutes: Fmt = lambda v: tr.t("digest.minutes", minutes=f"{v:g}")  # noqa: E731
    fields = [
        _figure(tr, tr.t("digest.m.calls"), f, "calls"),
        _figure(tr, tr.t("digest.m.calls_per_hour"), f, "calls_per_hour"),
        _pct(tr, "contact_rate", f, tr.t("digest.m.contact_rate")),
        _pct(tr, "email_open_rate", f, tr.t("digest.m.email_open_rate")),
        _figure(tr, tr.t("digest.m.meetings"), f, "meetings"),
        _pct(tr, "conversion_rate", f, tr.t("digest.m.conversion_rate")),
        _figure(tr, tr.t("digest.m.att_minutes"), f, "att_minutes", minutes),
        _figure(tr, tr.t("digest.m.aht_minutes"), f, "aht_minutes", minutes),
    ]
    return [section(Mrkdwn(f"*{escape(tr.t('digest.inside_sales'))}*"), fields=fields)]


def digest_blocks(tr: Translator, report: dict[str, Any]) -> list[dict[str, Any]]:
    as_of = date.fromisoformat(report["as_of"])
    month_label = _month(tr, report["period"]["start"])
    h, a, hl, r = report["handoffs"], report["alerts"], report["health"], report["renewals"]
    base = report["base_currency"]
    money: Fmt = lambda v: tr.money(Decimal(str(v)), base)  # noqa: E731
    hours: Fmt = lambda v: tr.t("digest.hours", hours=f"{v:g}")  # noqa: E731
    denominators = "; ".join(
        f"{tr.t(f'digest.{k}')}: {_denominator(tr, report, k)}"
        for k in ("churn_rate", "grr", "nrr", "onboarding_completion_rate")
        if k in report["denominators"]
    )
    movers = "\n".join(
        f"• {escape(m['name'])}: {_BAND_ICON[m['from']]} → {_BAND_ICON[m['to']]} ({m['score']})"
        for m in hl["movers"]
    ) or escape(tr.t("digest.no_movers"))
    bands = "  ".join(
        f"{_BAND_ICON[b]} {escape(tr.t(f'alert.band.{b}'))} {n}"
        + (f" ({escape(d)})" if (d := _delta(n, (hl.get("previous") or {}).get(b))) else "")
        for b, n in hl["bands"].items()
    )
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
                _figure(tr, tr.t("digest.upsell_count"), report, "upsell_count"),
                _figure(tr, tr.t("digest.upsell_mrr"), report, "upsell_mrr", money),
                _figure(tr, tr.t("digest.upsell_opportunities"), report, "upsell_opportunities"),
            ],
        ),
        *(_funnel(tr, report["funnel"]) if "funnel" in report else []),  # absent in pre-0005 digests
        *(_inside_sales(tr, report["funnel"]) if "funnel" in report else []),
        divider(),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.handoffs'))}*"),
            fields=[
                _figure(tr, tr.t("digest.handoffs_created"), h, "created"),
                _figure(tr, tr.t("digest.handoffs_accepted"), h, "accepted"),
                _figure(tr, tr.t("digest.median_accept"), h, "median_hours_to_accept", hours),
                _pct(tr, "average_completeness_pct", h, tr.t("digest.completeness")),
            ],
        ),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.alerts'))}*"),
            fields=[
                _figure(tr, tr.t("digest.alerts_raised"), a, "raised"),
                _figure(tr, tr.t("digest.alerts_acknowledged"), a, "acknowledged"),
                _figure(tr, tr.t("digest.alerts_resolved"), a, "resolved"),
                _figure(tr, tr.t("digest.median_ack"), a, "median_hours_to_acknowledge", hours),
            ],
        ),
        section(Mrkdwn(f"*{escape(tr.t('digest.health'))}*  {bands}")),
        section(Mrkdwn(f"*{escape(tr.t('digest.movers'))}*\n{movers}")),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.renewals'))}*"),
            fields=[_field(tr.t("digest.days", days=n), str(r[f"next_{n}_days"])) for n in (30, 60, 90)],
        ),
    ]


def _month(tr: Translator, iso: str) -> str:
    """``2026-10`` or ``2026-10-01`` as "October 2026" / "2026年10月"."""
    d = date.fromisoformat(iso if len(iso) > 7 else f"{iso}-01")
    return f"{d.year}年{d.month}月" if tr.locale == "ja" else d.strftime("%B %Y")


def _denominator(tr: Translator, report: dict[str, Any], key: str) -> str:
    """What a rate was divided by, in the reader's language (older digests carry English only)."""
    fact = (report.get("denominator_facts") or {}).get(key)
    if not fact:
        return str(report["denominators"][key])
    params = {k: v for k, v in fact.items() if k != "code"}
    if "month" in params:
        params["month"] = _month(tr, params["month"])
    if "date" in params:
        params["date"] = tr.day(date.fromisoformat(params["date"]))
    if "amount" in params:
        params["amount"] = tr.money(Decimal(str(params["amount"])), params.pop("currency"))
    return tr.t(f"digest.den.{fact['code']}", **params)


def _delta(now: int, before: int | None) -> str | None:
    if before is None or now == before:
        return None
    return f"{'▲' if now > before else '▼'}{abs(now - before)}"


def chart_labels(tr: Translator) -> Labels:
    """The chart's words in the digest's language."""
    return Labels(
        title=tr.t("chart.title"),
        accounts=tr.t("chart.accounts"),
        retention=tr.t("chart.retention"),
        bands=(tr.t("alert.band.green"), tr.t("alert.band.yellow"), tr.t("alert.band.red")),
    )


def digest_text(tr: Translator, report: dict[str, Any]) -> Mrkdwn:
    return escape(tr.t("digest.header", date=tr.day(date.fromisoformat(report["as_of"]))))
