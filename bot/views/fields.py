"""Small Block Kit factories shared by every view, with Slack's limits applied on purpose."""

from __future__ import annotations

from typing import Any

from bot.text import Mrkdwn, fit, plain

SECTION_MAX = 3000
FIELD_MAX = 2000
HEADER_MAX = 150
BUTTON_MAX = 75
LABEL_MAX = 2000
OPTION_MAX = 75
TITLE_MAX = 24
CONTEXT_MAX = 3000


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, HEADER_MAX), "emoji": True}}


def section(
    text: Mrkdwn, *, block_id: str | None = None, fields: list[Mrkdwn] | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(text, SECTION_MAX)}
    if fields:
        block["fields"] = [mrkdwn(f, FIELD_MAX) for f in fields[:10]]
    if block_id:
        block["block_id"] = block_id
    return block


def fields_section(fields: list[Mrkdwn]) -> dict[str, Any]:
    return {"type": "section", "fields": [mrkdwn(f, FIELD_MAX) for f in fields[:10]]}


def mrkdwn(text: Mrkdwn, limit: int = SECTION_MAX) -> dict[str, Any]:
    assert isinstance(text, Mrkdwn), "mrkdwn text must come through bot.text.escape"
    return {"type": "mrkdwn", "text": fit(text, limit) or " "}


def context(*texts: Mrkdwn) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(t, CONTEXT_MAX) for t in texts[:10]]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def text_obj(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": plain(text, limit), "emoji": True}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "text": text_obj(text, BUTTON_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style:
        b["style"] = style
    return b


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": text_obj(text, OPTION_MAX), "value": value}


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": text_obj(label, LABEL_MAX),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = text_obj(hint, LABEL_MAX)
    return block


def modal(
    callback_id: str,
    title: str,
    blocks: list[dict[str, Any]],
    *,
    submit: str | None = None,
    close: str | None = None,
    private_metadata: str = "",
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": text_obj(title, TITLE_MAX),
        "blocks": blocks,
    }
    if submit:
        view["submit"] = text_obj(submit, TITLE_MAX)
    if close:
        view["close"] = text_obj(close, TITLE_MAX)
    if private_metadata:
        assert len(private_metadata) <= 3000
        view["private_metadata"] = private_metadata
    return view
