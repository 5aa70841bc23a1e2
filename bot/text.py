"""The one way user text reaches Slack mrkdwn: escaped, so `<!channel>` typed in a form pings nobody."""

from __future__ import annotations

import re
from datetime import datetime

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


class Mrkdwn(str):
    """Text that is already safe mrkdwn: escaped user text or markup built here."""

    __slots__ = ()


def escape(text: object) -> Mrkdwn:
    """Slack's escaping rule for text: only ``&``, ``<`` and ``>`` (in that order)."""
    if isinstance(text, Mrkdwn):
        return text
    s = str(text)
    return Mrkdwn(s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def mention(user_id: str | None) -> Mrkdwn:
    """A user mention, only for well-formed ids; anything else is shown literally."""
    if user_id and _USER_ID.match(user_id):
        return Mrkdwn(f"<@{user_id}>")
    return escape(user_id or "-")


def link(url: str | None, text: object) -> Mrkdwn:
    """``text`` linking to ``url`` (a Slack permalink); bold text alone when the URL is missing or
    could break out of the link markup."""
    label = escape(text)
    if url and url.startswith("https://") and not set(url) & set("|<> "):
        return Mrkdwn(f"<{url}|{label}>")
    return Mrkdwn(f"*{label}*")


def fit(text: str, limit: int) -> str:
    """Cut escaped text to ``limit`` characters with an ellipsis, never inside an ``&amp;`` entity or a
    ``<@U…>`` / ``<!date…>`` token (half a token would show raw markup, or worse, a live mention)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return type(text)(cut + "…") if isinstance(text, Mrkdwn) else cut + "…"


def slack_date(when: datetime, fallback: str, fmt: str = "{date_short_pretty} {time}") -> Mrkdwn:
    """A date Slack shows in each reader's own timezone and language."""
    return Mrkdwn(f"<!date^{int(when.timestamp())}^{fmt}|{escape(fallback)}>")


def plain(text: str, limit: int) -> str:
    """Plain-text fields (headers, labels, buttons) show text literally; they only need the length cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["Mrkdwn", "escape", "fit", "link", "mention", "plain", "slack_date"]
