"""The App Home tab: the viewer's handoffs and how to use Baton."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.i18n import Translator
from bot.views.fields import divider, section
from bot.views.handoff_card import list_blocks
from storage.models import Handoff


def home_view(tr: Translator, handoffs: Sequence[Handoff], total: int) -> dict[str, Any]:
    blocks = [*list_blocks(tr, handoffs, total), divider(), section(tr.render("help.j2"))]
    return {"type": "home", "blocks": blocks}
