"""Why an account needs attention, in words: one line per reason code, per language.

The wording lives once, in ``accounts/texts/{en,ja}.yml``. The Slack cards read it through
bot/i18n.py (which adds the reader's date format and band labels); the command line, the JSON
outputs and the logs read it here, in English, with dates as ISO days."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from settings import MetricNames, metric_name

TEXTS = Path(__file__).resolve().parent / "texts"


@cache
def catalog(locale: str) -> dict[str, str]:
    """``reason.<code>`` (and the words reasons are made of) to its text in ``locale``."""
    return dict(yaml.safe_load((TEXTS / f"{locale}.yml").read_text(encoding="utf-8")))


def describe(code: str, p: dict[str, Any], names: MetricNames | None = None) -> str:
    """Plain-English reason for the CLI, the JSON outputs and logs: the cards' wording, with metrics by
    their display names (``health.metric_names``) and the model's drivers in English."""
    texts = catalog("en")
    if isinstance(p.get("drivers"), list):
        p = {**p, "drivers": texts["reason.driver_sep"].join(str(d.get("text", "")) for d in p["drivers"])}
    if "risk" in p:
        p = {**p, "risk": texts.get(f"reason.risk.{p['risk']}", p["risk"])}
    if "metric" in p:
        p = {**p, "metric": metric_name(str(p["metric"]), "en", names)}
    text = texts.get(f"reason.{code}")
    if text is None:
        return code
    try:
        return text.format(**p)
    except (KeyError, IndexError):
        return code
