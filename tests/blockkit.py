"""Block Kit checks with slack_sdk's own models, plus the block-count limits they do not enforce."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100


def check_blocks(blocks: list[dict[str, Any]], *, limit: int = MESSAGE_BLOCKS, where: str = "") -> list[str]:
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"{where}: {len(blocks)} blocks, Slack allows {limit}")
    for i, raw in enumerate(blocks):
        parsed = Block.parse(raw)
        if parsed is None:
            problems.append(f"{where}: block {i} of unknown type {raw.get('type')!r}")
            continue
        try:
            parsed.to_dict()
        except SlackObjectFormationError as exc:
            problems.append(f"{where}: block {i} ({raw.get('type')}): {exc}")
    return problems


def check_view(view: dict[str, Any], *, where: str = "") -> list[str]:
    problems = check_blocks(view.get("blocks") or [], limit=VIEW_BLOCKS, where=where)
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError) as exc:
        problems.append(f"{where}: view: {exc}")
    if len(view.get("private_metadata") or "") > 3000:
        problems.append(f"{where}: private_metadata over 3000 characters")
    return problems
