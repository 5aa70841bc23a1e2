"""Helpers the listener modules share: opening the handoff modal and answering privately."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.deps import Deps
from bot.i18n import Translator
from bot.text import escape
from bot.views import handoff_form
from handoff import service
from handoff.checklist import HandoffForm


def new_view(
    *, user_id: str, channel_id: str | None, account_name: str | None, tr: Translator
) -> dict[str, Any]:
    """The handoff modal for a new handoff, the account name prefilled."""
    form = HandoffForm(account_name=account_name or None, handed_off_by=user_id)
    meta = handoff_form.Metadata(mode="new", locale=tr.locale, channel_id=channel_id)
    return handoff_form.build(tr, form, meta)


def edit_view(
    s: Session, deps: Deps, *, handoff_id: int, user_id: str, tr: Translator
) -> tuple[dict[str, Any] | None, str | None]:
    """``(modal, None)`` to edit the handoff, or ``(None, refusal)`` when the user may not edit it.
    Read in the request's unit of work; the caller opens the modal once it is closed."""
    h = service.get(s, handoff_id)
    if not service.can_edit(h, deps.actor(user_id)):
        return None, tr.t("refuse.not_editor")
    meta = handoff_form.Metadata(
        mode="edit", locale=tr.locale, handoff_id=h.id, revision=h.revision, channel_id=h.channel_id
    )
    return handoff_form.build(tr, service.form_from(h), meta), None


def request_key(kind: str, body: dict[str, Any]) -> str | None:
    """What stays the same when Slack retries a request or someone replays it, and differs otherwise:
    a modal's view id (one per opened modal; a refused submission records nothing, so correcting it
    and submitting again goes through), a slash command's trigger id."""
    view_id = (body.get("view") or {}).get("id")
    ident = view_id or body.get("trigger_id")
    return f"{kind}:{ident}" if isinstance(ident, str) and ident else None


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The message for ``bot.respond.answer``: shown only to the caller, the original left intact."""
    body: dict[str, Any] = {"text": escape(text), "response_type": "ephemeral", "replace_original": False}
    if blocks:
        body["blocks"] = blocks
    return body


def field_label(tr: Translator, name: str) -> str:
    try:
        return tr.t(f"field.{name}")
    except KeyError:
        return tr.t(f"item.{name}")
