"""The digest's chart: accounts by health band and MRR retention over the last 12 weeks, as a PNG.
People read a trend faster from a picture than from a column of numbers."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.health import health_all
from digest.kpi import Book, Money, nrr_at
from settings import Rules
from storage.models import HealthDay

log = logging.getLogger(__name__)
WEEKS = 12
COLORS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}


def trend(session: Session, as_of: date, rules: Rules) -> list[dict[str, Any]]:
    """Per week, the last one ending on ``as_of`` (oldest first): accounts per band, and NRR (12 months)
    as of that day, by the same rule as the digest's NRR figure; None where there is no history a
    year back, so such a week is not drawn rather than drawn as 100 %."""
    first = as_of - timedelta(days=7 * (WEEKS - 1))  # the last week ends on as_of itself
    money = Money.of_rules(rules.digest.base_currency, rules.digest.fx_rates)
    book = Book(session)
    days = [first + timedelta(days=7 * i) for i in range(WEEKS)]
    stored = {d.day: d for d in session.scalars(select(HealthDay).where(HealthDay.day.in_(days)))}
    weeks = []
    for day in days:
        if day in stored:  # the daily scan kept that day's counts
            kept = stored[day]
            bands = {"green": kept.green, "yellow": kept.yellow, "red": kept.red}
        else:  # a day no scan ran for (before Baton, or an outage): scored now
            bands = {"green": 0, "yellow": 0, "red": 0}
            for h in health_all(session, day, rules.health):
                if h.band in bands:
                    bands[h.band] += 1
        weeks.append({"week": day.isoformat(), **bands, "nrr": nrr_at(book, money, day)[0]})
    return weeks


# Fonts with Japanese glyphs, best first; Debian's fonts-ipafont-gothic (in the Docker image) is enough.
CJK_FONTS = ("IPAexGothic", "IPAGothic", "Noto Sans CJK JP", "Noto Sans JP", "TakaoGothic", "VL Gothic")


@dataclass(frozen=True)
class Labels:
    """The chart's words, in the reader's language (bot/templates/*/strings.yml, chart.*)."""

    title: str = "Accounts by health band, NRR (12 months), last 12 weeks"
    accounts: str = "accounts"
    retention: str = "NRR (12 months) %"
    bands: tuple[str, str, str] = ("green", "yellow", "red")
    no_health: str = "No health data yet: send usage signals and the daily scan fills this in."

    def needs_cjk(self) -> bool:
        words = self.title + self.accounts + self.retention + "".join(self.bands) + self.no_health
        return any(ord(c) > 0x2E7F for c in words)


@cache
def cjk_font() -> str | None:
    """The name of an installed font that has Japanese glyphs, or None. Fonts installed after
    matplotlib cached its font list are found on disk and added."""
    manager = font_manager.fontManager
    for attempt in range(2):
        installed = {f.name for f in manager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
        if found or attempt:
            return found
        for path in font_manager.findSystemFonts():
            if any(
                k in path.lower()
                for k in ("ipag", "ipaexg", "notosanscjk", "notosansjp", "takao", "vl-gothic")
            ):
                manager.addfont(path)
    return None


def render(weeks: list[dict[str, Any]], labels: Labels | None = None) -> bytes:
    """A PNG. Japanese labels need a CJK font: without one they would be empty boxes, so the chart
    falls back to English and says so in the log."""
    labels = labels or Labels()
    font = cjk_font() if labels.needs_cjk() else None
    if labels.needs_cjk() and font is None:
        log.warning("no font with Japanese glyphs (install fonts-ipafont-gothic): chart in English")
        labels = Labels()
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]} if font else {}):
        return _draw(weeks, labels)


def _line(weeks: list[dict[str, Any]]) -> list[float]:
    """NRR per week, NaN where there is none (matplotlib leaves a gap); older digests kept
    ``mrr_retention``."""
    values = [w.get("nrr", w.get("mrr_retention")) for w in weeks]
    return [math.nan if v is None else float(v) for v in values]


def figure(weeks: list[dict[str, Any]], labels: Labels) -> Figure:
    """The chart as a matplotlib figure (``render`` makes the PNG; tests read the figure)."""
    names = dict(zip(("green", "yellow", "red"), labels.bands, strict=True))
    ticks = [w["week"][5:] for w in weeks]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    ax.set_title(labels.title)
    has_health = any(w[b] for w in weeks for b in ("green", "yellow", "red"))
    line = _line(weeks)
    has_line = any(not math.isnan(v) for v in line)
    handles: list[Any] = []
    if has_health:
        bottom = [0] * len(weeks)
        for band in ("green", "yellow", "red"):
            values = [w[band] for w in weeks]
            ax.bar(ticks, values, bottom=bottom, color=COLORS[band], label=names[band])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel(labels.accounts)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        handles = ax.get_legend_handles_labels()[0]
    else:  # no counts to draw: say so instead of an empty axis from -0.045 to 0.045 customers
        ax.text(0.5, 0.5, labels.no_health, ha="center", va="center", transform=ax.transAxes, wrap=True)
        ax.set_yticks([])
        if not has_line:
            ax.set_xticks([])
    if has_line:  # no history a year back: no line rather than a line at 100 %
        twin = ax.twinx()
        twin.plot(ticks, line, color="#1f3a5f", marker="o", label=labels.retention)
        twin.set_ylabel("%")
        handles += twin.get_legend_handles_labels()[0]
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    if handles:  # below the plot, so it never hides the latest weeks
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.22),
            fontsize=7,
            ncols=4,
            frameon=False,
        )
    fig.tight_layout()
    return fig


def _draw(weeks: list[dict[str, Any]], labels: Labels) -> bytes:
    fig = figure(weeks, labels)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()
