"""Posting and updating handoff messages. The card is posted once and then updated in place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.deps import Deps
from bot.ids import Action
from bot.text import escape, mention
from bot.views.fields import button, section
from bot.views.handoff_card import card, card_text, checklist_blocks
from handoff import service
from handoff.checklist import missing_items
from storage.models import Handoff

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, client: WebClient, deps: Deps) -> None:
        self.client = client
        self.deps = deps

    def post_card(self, handoff_id: int, fallback_channel: str | None) -> str | None:
        """Post the card; returns Slack's error code when it could not be posted."""
        channel = self.deps.settings.handoff_channel or fallback_channel
        if not channel:
            return "no_channel"
        with self.deps.db.session() as s:
            h = service.get(s, handoff_id)
            tr = self.deps.channel_tr
            blocks, text = card(tr, h, timezone=self.deps.settings.rules.schedule.timezone), card_text(tr, h)
        try:
            resp = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        except SlackApiError as exc:
            log.warning("posting handoff %s failed: %s", handoff_id, exc.response.get("error"))
            return str(exc.response.get("error") or "error")
        permalink = None
        try:
            permalink = self.client.chat_getPermalink(channel=resp["channel"], message_ts=resp["ts"])[
                "permalink"
            ]
        except SlackApiError:
            log.info("no permalink for handoff %s", handoff_id)
        with self.deps.db.session() as s:
            service.record_post(
                s, handoff_id=handoff_id, channel_id=resp["channel"], ts=resp["ts"], permalink=permalink
            )
        return None

    # Each side effect below stands alone: a deleted card must not stop the CSM's DM, so Slack errors
    # are logged and reported as False instead of aborting the listener.
    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> bool:
        try:
            fn(**kwargs)
            return True
        except SlackApiError as exc:
            log.warning("%s failed: %s", what, exc.response.get("error"))
            return False

    def refresh_card(self, h: Handoff) -> bool:
        if not (h.channel_id and h.message_ts):
            return False
        tr = self.deps.channel_tr
        return self._call(
            "card update",
            self.client.chat_update,
            channel=h.channel_id,
            ts=h.message_ts,
            text=card_text(tr, h),
            blocks=card(tr, h, timezone=self.deps.settings.rules.schedule.timezone),
        )

    def thread_note(self, h: Handoff, text: str) -> bool:
        """A reply in the card's thread; False when the card was never posted or the reply failed."""
        if not (h.channel_id and h.message_ts):
            return False
        return self._call(
            "thread note",
            self.client.chat_postMessage,
            channel=h.channel_id,
            thread_ts=h.message_ts,
            text=text,
        )

    def dm_assigned(self, csm_user_id: str, h: Handoff, assigner: str) -> bool:
        """The newly assigned CSM gets the whole handoff, in their own language."""
        tr = self.deps.tr_for(csm_user_id)
        intro = tr.render("assigned_dm.j2", assigner=mention(assigner), account=h.account.name)
        blocks = [section(intro), *checklist_blocks(tr, h)]
        return self._call(
            "checklist DM", self.client.chat_postMessage, channel=csm_user_id, text=intro, blocks=blocks
        )

    def nudge_missing(self, h: Handoff) -> bool:
        """Tell the submitter which checklist items are still empty, with a button to complete them."""
        missing = missing_items(h)
        if not missing:
            return False
        tr = self.deps.tr_for(h.submitted_by)
        text = tr.render(
            "nudge.j2", account=h.account.name, missing=[tr.t(f"item.{i.value}") for i in missing]
        )
        blocks = [
            section(text),
            {"type": "actions", "elements": [button(tr.t("card.edit"), Action.EDIT, str(h.id), "primary")]},
        ]
        return self._call(
            "nudge", self.client.chat_postMessage, channel=h.submitted_by, text=text, blocks=blocks
        )

    def ephemeral(self, h: Handoff, user_id: str, text: str) -> bool:
        """A note only ``user_id`` sees, under the card; a DM when there is no card."""
        if h.channel_id:
            return self._call(
                "ephemeral note",
                self.client.chat_postEphemeral,
                channel=h.channel_id,
                user=user_id,
                text=escape(text),
            )
        return self.notice(user_id, text)

    def notice(self, user_id: str, text: str) -> bool:
        return self._call("notice", self.client.chat_postMessage, channel=user_id, text=escape(text))
