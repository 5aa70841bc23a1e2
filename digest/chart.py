"""The digest's chart: accounts by health band and MRR retention over the last 12 weeks, as a PNG.
People read a trend faster from a picture than from a column of numbers."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from sqlalchemy.orm import Session

from alerts.health import health_all
from digest.kpi import Money, _active, state_at
from settings import Rules

WEEKS = 12
COLORS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}


def trend(session: Session, as_of: date, rules: Rules) -> list[dict[str, Any]]:
    """Per week (oldest first): accounts per band, and the MRR of the accounts active 12 weeks ago as a
    percentage of their MRR then (a rolling retention line)."""
    first = as_of - timedelta(days=7 * (WEEKS - 1) + 1)
    money = Money(
        rules.digest.base_currency.upper(),
        {k.upper(): Decimal(str(v)) for k, v in rules.digest.fx_rates.items()},
    )
    cohort_state = state_at(session, first)
    cohort = _active(cohort_state)
    base = sum((money.of(a, cohort_state.get(a)) or Decimal(0)) for a in cohort)
    weeks = []
    for i in range(WEEKS):
        day = first + timedelta(days=7 * i)
        bands = {"green": 0, "yellow": 0, "red": 0}
        for h in health_all(session, day, rules.health):
            if h.band in bands:
                bands[h.band] += 1
        state = state_at(session, day)
        now = sum((money.of(a, state.get(a)) or Decimal(0)) for a in cohort)
        weeks.append(
            {
                "week": day.isoformat(),
                **bands,
                "mrr_retention": round(float(now / base * 100), 1) if base else None,
            }
        )
    return weeks


def render(weeks: list[dict[str, Any]], *, title: str, retention_label: str) -> bytes:
    labels = [w["week"][5:] for w in weeks]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    bottom = [0] * len(weeks)
    for band in ("green", "yellow", "red"):
        values = [w[band] for w in weeks]
        ax.bar(labels, values, bottom=bottom, color=COLORS[band], label=band)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("accounts")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = ax.get_legend_handles_labels()[0]
    retention = [w["mrr_retention"] for w in weeks]
    if any(v is not None for v in retention):  # no cohort 12 weeks ago: no line rather than an empty axis
        line = ax.twinx()
        line.plot(labels, retention, color="#1f3a5f", marker="o", label=retention_label)
        line.set_ylabel("%")
        handles += line.get_legend_handles_labels()[0]
    ax.set_title(title)
    ax.legend(handles=handles, loc="upper left", fontsize=7, ncols=4)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()
