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


def _change(
    tr: Translator, value: float | None, before: float | None, fmt: Fmt = _plain, period: str = "week"
) -> str | None:
    """ "▲2.5pt vs last month" / "vs last week", by the figure's period; None when either has no figure."""
    if value is None or before is None:
        return None
    key = "digest.vs_last_month" if period == "month" else "digest.vs_last_week"
    diff = round(float(value) - float(before), 1)
    if diff == 0:
        return tr.t(key, change="±0")
    return tr.t(key, change=("▲" if diff > 0 else "▼") + fmt(abs(diff)))


def _period(part: dict[str, Any], key: str) -> str:
    """The period a figure covers: the report says so per key; handoffs, alerts and the funnel are weekly."""
    return str((part.get("periods") or {}).get(key, "week"))


def _figure(
    tr: Translator, label: str, part: dict[str, Any], key: str, fmt: Fmt = _plain, extra: str = ""
) -> Mrkdwn:
    """One figure of ``part`` with its change from ``part["previous"]``; "not enough data" when None."""
    value, before = part.get(key), (part.get("previous") or {}).get(key)
    if value is None:
        return _field(label, tr.t("digest.not_enough"))
    return _field(label, fmt(value) + extra, _change(tr, value, before, fmt, _period(part, key)))


def _percent(value: float) -> str:
    return f"{value}%"  # already rounded to one decimal: 25.0%, as the JSON says


def _pct(tr: Translator, key: str, part: dict[str, Any], label: str | None = None) -> Mrkdwn:
    """A rate: its change is in percentage points."""
    value, before = part.get(key), (part.get("previous") or {}).get(key)
    label = label or tr.t(f"digest.{key}")
    if value is None:
        return _field(label, tr.t("digest.not_enough"))
    return _field(
        label, _percent(value), _change(tr, value, before, lambda d: f"{d:g}pt", _period(part, key))
    )


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
    """The weekly digest: the month's KPIs, then the week's upsell, funnel, handoffs, alerts, health,
    renewals and the model. Sections a digest stored before they existed are left out."""
    as_of = date.fromisoformat(report["as_of"])
    month_label = _month(tr, report["period"]["start"])
    base = report["base_currency"]
    money: Fmt = lambda v: tr.money(Decimal(str(v)), base)  # noqa: E731
    return [
        header("📊 " + tr.t("digest.header", date=tr.day(as_of))),
        *_kpi_blocks(tr, report, month_label, money),
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
        *_week_blocks(tr, report),
        *_health_blocks(tr, report["health"]),
        section(
            Mrkdwn(f"*{escape(tr.t('digest.renewals'))}*"),
            fields=[
                _field(tr.t("digest.days", days=n), str(report["renewals"][f"next_{n}_days"]))
                for n in (30, 60, 90)
            ],
        ),
        *_model(tr, report.get("model") or {}),  # absent in digests from before the model decided
    ]


def _kpi_blocks(tr: Translator, report: dict[str, Any], month_label: str, money: Fmt) -> list[dict[str, Any]]:
    """The month's KPIs with what each is out of, then the same per CSM and per segment."""
    denominators = "\n".join(
        tr.t("digest.den_item", label=tr.t(f"digest.{k}"), text=_denominator(tr, report, k))
        for k in ("churn_rate", "grr", "nrr", "onboarding_completion_rate", "ltv", "nps")
        if k in report["denominators"]
    )
    return [
        section(Mrkdwn(f"*{escape(tr.t('digest.kpis', month=month_label))}*")),
        fields_section(
            [
                _pct(tr, k, report)
                for k in ("churn_rate", "customer_retention_rate", "grr", "nrr", "onboarding_completion_rate")
            ]
        ),
        *([fields_section(_money_kpis(tr, report, money))] if "mrr" in report else []),  # pre-kpi digests
        context(tr.m("digest.denominators", text=denominators)),
        *_groups(tr, report, "csm", month_label, money),
        *_groups(tr, report, "segment", month_label, money),
    ]


def _week_blocks(tr: Translator, report: dict[str, Any]) -> list[dict[str, Any]]:
    """The week's handoffs and alerts."""
    h, a = report["handoffs"], report["alerts"]
    hours: Fmt = lambda v: tr.t("digest.hours", hours=f"{v:g}")  # noqa: E731
    return [
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
    ]


def _health_blocks(tr: Translator, hl: dict[str, Any]) -> list[dict[str, Any]]:
    """Accounts per health band (with the change from last week) and the accounts that moved."""
    movers = "\n".join(
        tr.t(
            "digest.row_item",
            name=escape(m["name"]),
            text=tr.t("digest.paren", text=f"{_BAND_ICON[m['from']]} → {_BAND_ICON[m['to']]}", n=m["score"]),
        )
        for m in hl["movers"]
    ) or escape(tr.t("digest.no_movers"))
    bands = "  ".join(
        f"{_BAND_ICON[b]} {escape(tr.t(f'alert.band.{b}'))} {n}"
        + (
            escape(tr.t("digest.paren", text="", n=d))
            if (d := _delta(n, (hl.get("previous") or {}).get(b)))
            else ""
        )
        for b, n in hl["bands"].items()
    )
    return [
        section(Mrkdwn(f"*{escape(tr.t('digest.health'))}*  {bands}")),
        section(Mrkdwn(f"*{escape(tr.t('digest.movers'))}*\n{movers}")),
    ]


def _ratio(v: Any, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def _model(tr: Translator, part: dict[str, Any]) -> list[dict[str, Any]]:
    """Who decides the alerts when that changed (each switch told once), and the last backtest."""
    lines = []
    for sw in part.get("switches", []):
        kind = tr.t(f"digest.kind.{sw['kind']}")
        if sw["by"] == "model":
            fig = sw["params"].get("figures", {})
            auc = fig.get("auc_30d") or next(iter(fig.values()), {})
            lines.append(
                tr.t(
                    f"digest.switch.model.{sw['kind']}",
                    kind=kind,
                    version=sw["params"].get("version", "?"),
                    model=_ratio(auc.get("model"), "{:.2f}"),
                    rules=_ratio(auc.get("rules"), "{:.2f}"),
                )
            )
        else:
            lines.append(tr.t("digest.switch.rules", kind=kind, why=tr.t(f"digest.why.{sw['why']}")))
    if bt := part.get("backtest"):
        lines.append(
            tr.t(
                "digest.backtest",
                first=tr.day(date.fromisoformat(bt["first"])),
                last=tr.day(date.fromisoformat(bt["last"])),
                recall=_ratio(bt.get("model_churn_recall_7_90d"), "{:.0%}"),
                rate=_ratio(bt.get("model_churn_alerts_per_100_week"), "{:.1f}"),
                lift=_ratio(bt.get("model_churn_lift_90d"), "{:.1f}"),
                rules_recall=_ratio(bt.get("rules_churn_recall_7_90d"), "{:.0%}"),
                rules_rate=_ratio(bt.get("rules_churn_alerts_per_100_week"), "{:.1f}"),
            )
        )
    if algorithms := _algorithms(tr, part.get("algorithms") or []):
        lines.append(algorithms)
    if not lines:
        return []
    body = "\n".join(escape(line) for line in lines)
    return [divider(), section(Mrkdwn(f"*{escape(tr.t('digest.model'))}*\n{body}"))]


def _algorithms(tr: Translator, models: list[dict[str, Any]]) -> str | None:
    """One line naming the algorithm of each model in use and why its backtest chose it
    (model/backtest.choose); None when the rules decide both kinds. Escaped by the caller."""
    clauses = []
    for m in models:
        algorithm = _known(tr, f"digest.algorithm.{m['algorithm']}") or str(m["algorithm"])
        why = _known(tr, f"digest.algorithm_why.{m.get('why')}")  # a choice recorded before a reason: none
        model = tr.t(f"digest.algorithm_of.{m['kind']}")
        if why:
            clauses.append(tr.t("digest.algorithm_line", model=model, algorithm=algorithm, why=why))
        else:
            clauses.append(tr.t("digest.algorithm_line_bare", model=model, algorithm=algorithm))
    return tr.t("digest.algorithm_sep").join(clauses) or None


def _known(tr: Translator, key: str) -> str | None:
    """The catalog's text for a value stored in the digest, or None for one this release has no words for."""
    try:
        return tr.t(key)
    except KeyError:
        return None


def _money_kpis(tr: Translator, report: dict[str, Any], money: Fmt) -> list[Mrkdwn]:
    """MRR, ARR, churned MRR, LTV and NPS of the month; LTV without a churn rate is "—" with why."""
    fields = [_figure(tr, tr.t(f"digest.{k}"), report, k, money) for k in ("mrr", "arr", "churned_mrr")]
    if report.get("ltv") is None:
        fields.append(_field(tr.t("digest.ltv"), "—", _denominator(tr, report, "ltv")))
    else:
        fields.append(_figure(tr, tr.t("digest.ltv"), report, "ltv", money))
    score: Fmt = lambda v: f"{v:g}"  # noqa: E731
    extra = tr.t("digest.nps_answers", count=report.get("nps_answers") or 0)
    fields.append(_figure(tr, tr.t("digest.nps"), report, "nps", score, extra))
    return fields


GROUP_ROWS = 15  # a section's text stays far below Slack's 3,000 characters


def _groups(tr: Translator, report: dict[str, Any], key: str, month: str, money: Fmt) -> list[dict[str, Any]]:
    """The month per CSM or per segment, one line each, biggest MRR first."""
    rows = report.get(f"by_{key}") or []
    if not rows or all(r[key] is None for r in rows):
        return []  # nobody set a CSM or segment: a section of "(none)" says nothing
    lines = []
    for r in rows[:GROUP_ROWS]:
        churn = r["churn_rate"]
        text = tr.t(
            "digest.row",
            customers=r["customers_at_end"],
            mrr=money(r["mrr"]),
            churn=tr.t("digest.not_enough") if churn is None else f"{churn}%",
            churned=r["churned_customers"] or 0,
        )
        name = r[key] if r[key] is not None else tr.t(f"digest.no_{key}")
        lines.append(tr.t("digest.row_item", name=escape(name), text=escape(text)))
    if len(rows) > GROUP_ROWS:
        lines.append(escape(tr.t("digest.more", n=len(rows) - GROUP_ROWS)))
    title = escape(tr.t(f"digest.by_{key}", month=month))
    return [section(Mrkdwn(f"*{title}*\n" + "\n".join(lines)))]


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
    currency = params.pop("currency", report.get("base_currency"))
    for name in ("amount", "arpa"):
        if name in params:
            params[name] = tr.money(Decimal(str(params[name])), currency)
    if "margin" in params:
        params["margin"] = f"{params['margin']:g}"
    text = tr.t(f"digest.den.{fact['code']}", **params)
    if key == "churn_rate":  # where the churn dates (and the new customers' dates) came from
        retention = (report.get("denominator_facts") or {}).get("customer_retention_rate") or {}
        for kind, part in (("dates", fact), ("starts", retention)):
            if part.get("dates"):
                counts = {k: v for k, v in part.items() if k.startswith("from_")}
                text += tr.t("digest.den.sep") + tr.t(f"digest.den.{kind}.{part['dates']}", **counts)
    return text


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
        no_health=tr.t("chart.no_health"),
    )


def digest_text(tr: Translator, report: dict[str, Any]) -> Mrkdwn:
    return escape(tr.t("digest.header", date=tr.day(date.fromisoformat(report["as_of"]))))
