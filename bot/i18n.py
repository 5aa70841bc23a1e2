"""English and Japanese UI. Each language is one template set: ``strings.yml`` for short labels,
Jinja2 templates for message text and ``cli.yml`` for what the command line prints; the reasons an
account needs attention come from accounts/texts (one wording for the cards and the CLI). Template
variables are escaped for mrkdwn unless already ``Mrkdwn``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from accounts import reasons
from bot.text import Mrkdwn, escape
from settings import SUPPORTED_LOCALES

TEMPLATES = Path(__file__).resolve().parent / "templates"
CATALOGS = ("strings.yml", "cli.yml")  # Slack's labels; the terminal's lines (app.py and the CLI modules)
_SYMBOL = {"JPY": "¥", "USD": "$", "EUR": "€"}
_DECIMALS = {"JPY": 0}


def normalize_locale(value: str | None, default: str = "en") -> str:
    """Slack's ``ja-JP`` / ``en-US`` to ``ja`` / ``en``; anything else falls back to the default."""
    if not value:
        return default
    short = value.replace("_", "-").split("-")[0].lower()
    return short if short in SUPPORTED_LOCALES else default


class Translator:
    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._strings: dict[str, str] = {}
        for catalog in CATALOGS:
            self._strings.update(yaml.safe_load((TEMPLATES / locale / catalog).read_text(encoding="utf-8")))
        self._strings.update(reasons.catalog(locale))  # the reasons' wording, shared with the CLI
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES / locale),
            undefined=StrictUndefined,
            finalize=escape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["money"] = self.money
        self._env.filters["day"] = self.day

    def t(self, key: str, **params: Any) -> str:
        """A short label; raises KeyError on a missing key so tests catch it in both languages."""
        text = self._strings[key]
        return text.format(**params) if params else text

    def m(self, key: str, **params: Any) -> Mrkdwn:
        """A label for mrkdwn: the catalog text is trusted, the parameters are escaped."""
        text = escape(self._strings[key])
        return Mrkdwn(text.format(**{k: escape(v) for k, v in params.items()}) if params else text)

    def render(self, template: str, **context: Any) -> Mrkdwn:
        return Mrkdwn(self._env.get_template(template).render(t=self.t, **context).strip())

    def label(self, key: str) -> str:
        """A label and its colon as the language writes it: "CSM: " / 「担当CSM：」."""
        return self.t(key) + self.t("punct.colon")

    def join(self, items: list[str]) -> str:
        """A list in running text: "a, b" / 「a、b」."""
        return self.t("punct.list").join(items)

    def money(self, amount: Decimal | None, currency: str | None) -> str:
        if amount is None or not currency:
            return "-"
        places = 0 if amount == amount.to_integral_value() else _DECIMALS.get(currency, 2)
        quantized = amount.quantize(Decimal(1).scaleb(-places)) if places else amount.quantize(Decimal(1))
        number = f"{quantized:,.{places}f}"
        symbol = _SYMBOL.get(currency)
        return f"{symbol}{number}" if symbol else f"{number} {currency}"

    def day(self, value: date | None, *, today: date | None = None) -> str:
        """12月3日 / Dec 3: with ``today``, the year only when it is not this year (how people write
        dates in running text); without it, always the year."""
        if value is None:
            return "-"
        year = today is None or value.year != today.year
        if self.locale == "ja":
            return f"{value.year}年{value.month}月{value.day}日" if year else f"{value.month}月{value.day}日"
        return value.strftime("%b %-d, %Y" if year else "%b %-d")


@cache
def translator(locale: str) -> Translator:
    return Translator(locale)
