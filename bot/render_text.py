"""A readable terminal rendering of Block Kit, for the demo and for people reading logs."""

from __future__ import annotations

import re
import textwrap
import unicodedata
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
        if width(para) > len(para):  # Japanese: no spaces between words, two columns a character
            lines.extend(_wrap_wide(para, indent, hang))
            continue
        wrapped = textwrap.wrap(para, WIDTH - len(indent), initial_indent=indent, subsequent_indent=hang)
        lines.extend(wrapped or [indent])
    return lines


_BREAK_AFTER = set(" 、。，）」：")


def _wrap_wide(text: str, indent: str, hang: str) -> list[str]:
    """Wrap by display width, breaking after a space or Japanese punctuation when one is near."""
    lines, prefix = [], indent
    while width(prefix + text) > WIDTH:
        room, cut, used = WIDTH - width(prefix), 0, 0
        for i, c in enumerate(text):
            used += width(c)
            if used > room:
                break
            if c in _BREAK_AFTER:
                cut = i + 1
        if cut < len(text) // 4 or not cut:  # no break near the end: cut at the edge
            cut = max(i, 1)
        lines.append((prefix + text[:cut]).rstrip())
        text, prefix = text[cut:].lstrip(), hang
    lines.append(prefix + text)
    return lines


def width(text: str) -> int:
    """Columns on a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e]")  # kana, kanji, full-width forms


def _one_line(field: str) -> str:
    """A field's label, value and change on one line ("Churn rate: 25.0%  ±0 vs last month"); a
    Japanese label takes a full-width colon."""
    label, _, rest = field.partition("\n")
    parts = [p for p in rest.splitlines() if p.strip()]
    colon = "：" if _JAPANESE.search(label) else ": "  # not emoji: "Priority: 🟢 High" stays ASCII
    return f"{label}{colon}" + "  ".join(parts)


def _columns(cells: list[str], indent: str = "  ") -> list[str]:
    """Fields two to a line when both fit, as Slack shows them side by side; else one a line."""
    col = (WIDTH - len(indent)) // 2
    lines: list[str] = []
    for i in range(0, len(cells), 2):
        pair = cells[i : i + 2]
        if len(pair) == 2 and width(pair[0]) < col and width(pair[1]) <= col:
            lines.append(indent + pair[0] + " " * (col - width(pair[0])) + pair[1])
        else:
            for cell in pair:
                lines += _wrap(cell, indent, indent + "  ")
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
            out += _columns([_one_line(mrkdwn_to_text(f["text"])) for f in b.get("fields") or []])
        elif kind == "context":
            for el in b.get("elements", []):
                first, *more = mrkdwn_to_text(el.get("text", "")).splitlines() or [""]
                out += _wrap(first, "  · ", "    ")
                for para in more:
                    out += _wrap(para, "    ", "      ")
        elif kind == "actions":
            out += _wrap("  ".join(_element(e) for e in b.get("elements", [])))
        elif kind == "divider":
            out.append("─" * WIDTH)
        elif kind == "input":
            out.append(f"  {b['label']['text']}{'' if b.get('optional') else ' *'}")
    return "\n".join(out).strip("\n")
