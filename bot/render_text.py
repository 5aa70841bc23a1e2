"""A readable terminal rendering of Block Kit, for the demo and for people reading logs."""

from __future__ import annotations

import re
import textwrap
from typing import Any

_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_BARE = re.compile(r"<([^<>|]+)>")
_ITALIC = re.compile(r"(?<![\w])_([^_\n]+)_(?![\w])")
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
WIDTH = 78
_EMOJI = {":memo:": "📝", ":white_check_mark:": "✅", ":question:": "❓", ":pencil2:": "✏️"}


def mrkdwn_to_text(text: str) -> str:
    """Slack markup to what a reader would see: mentions as @id, links as label (url), entities decoded."""
    text = _DATE.sub(r"\1", text)

    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "@" + target[1:]
        return f"{label} ({target})"

    text = _LINK.sub(link, text)
    text = _BARE.sub(lambda m: "@" + m.group(1)[1:] if m.group(1).startswith("@") else m.group(1), text)
    text = _ITALIC.sub(r"\1", text.replace("*", ""))
    for code, char in _EMOJI.items():
        text = text.replace(code, char)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _wrap(text: str, indent: str = "", hang: str | None = None) -> list[str]:
    hang = indent if hang is None else hang
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        wrapped = textwrap.wrap(para, WIDTH - len(indent), initial_indent=indent, subsequent_indent=hang)
        lines.extend(wrapped or [indent])
    return lines


def _element(el: dict[str, Any]) -> str:
    kind = el.get("type")
    label = (el.get("text") or el.get("placeholder") or {}).get("text", "")
    if kind == "button":
        return f"[ {label} ]"
    if kind in ("users_select", "static_select", "multi_users_select"):
        chosen = el.get("initial_user") or (el.get("initial_option") or {}).get("value")
        return f"[ {label}: @{chosen} ▾ ]" if chosen else f"[ {label} ▾ ]"
    return f"[ {kind} ]"


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "header":
            title = b["text"]["text"]
            out += ["", title, "═" * min(WIDTH, max(len(title) * 2, 10))]
        elif kind == "section":
            if b.get("text") and b["text"]["text"].strip():
                extra = f"  {_element(b['accessory'])}" if b.get("accessory") else ""
                out += _wrap(mrkdwn_to_text(b["text"]["text"]) + extra)
            for f in b.get("fields") or []:
                label, _, value = mrkdwn_to_text(f["text"]).partition("\n")
                out += _wrap(f"{label}: {value}", "  ")
        elif kind == "context":
            for el in b.get("elements", []):
                out += _wrap(mrkdwn_to_text(el.get("text", "")), "  · ", "    ")
        elif kind == "actions":
            out += _wrap("  ".join(_element(e) for e in b.get("elements", [])))
        elif kind == "divider":
            out.append("─" * WIDTH)
        elif kind == "input":
            out.append(f"  {b['label']['text']}{'' if b.get('optional') else ' *'}")
    return "\n".join(out).strip("\n")
