"""What the handoff listeners do once a change is committed: kick delivery of the messages they
queued with it (``handoff.service.queue_*``, ``storage.outbox.enqueue``), then tell the person who
acted what became of them. Sending itself is ``bot/delivery.py``'s, through the outbox."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.delivery import Delivery, Stats
from bot.deps import Deps
from bot.i18n import Translator
from bot.text import escape
from handoff import service
from storage.models import Handoff, Outbox
from storage.outbox import enqueue

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, client: WebClient, deps: Deps) -> None:
        self.client = client
        self.deps = deps

    def deliver(self, *, handoff_id: int | None = None, ids: list[int] | None = None) -> Stats:
        """Send now what was just queued; anything Slack refuses for now stays for the outbox job."""
        return Delivery(self.deps.db, self.client, self.deps.settings, self.deps.clock).run(
            handoff_id=handoff_id, ids=ids
        )

    def notice(self, user_id: str, text: str) -> None:
        """A DM to ``user_id``, through the outbox like every other message."""
        with self.deps.db.session() as s:
            row = enqueue(s, None, "notice", self.deps.clock(), user=user_id, text=text)
            s.flush()
            row_id = row.id
        self.deliver(ids=[row_id])

    def answer_dm(self, user_id: str, message: dict[str, Any]) -> None:
        """A private answer (``ephemeral``'s keyword arguments: text and blocks, formatted and escaped
        already) as a DM through the outbox, blocks and mentions as they were built."""
        payload = {"user": user_id, "text": str(message.get("text") or ""), "formatted": True}
        if message.get("blocks"):
            payload["blocks"] = message["blocks"]
        with self.deps.db.session() as s:
            row = enqueue(s, None, "notice", self.deps.clock(), **payload)
            s.flush()
            row_id = row.id
        self.deliver(ids=[row_id])

    def tell_card_state(self, handoff_id: int, user_id: str, tr: Translator) -> None:
        """The submitter hears the truth about the card: nothing when it is posted (the nudge says
        so), otherwise that it is saved and why it is not in the channel yet."""
        with self.deps.db.session() as s:
            state = service.card_state(s, handoff_id)
        if state is None:
            self.notice(user_id, tr.t("notice.no_channel"))
        elif state[0] != "sent":
            self.notice(user_id, tr.t("notice.post_failed", error=state[1] or state[0]))

    def question_outcome(self, s: Session, row_id: int) -> str:
        """The notice key that says where a question went: the thread, a DM, or still queued."""
        row = s.get(Outbox, row_id)
        h = s.get(Handoff, row.handoff_id) if row and row.handoff_id else None
        if row is None or row.state != "sent":
            return "notice.question_queued"
        return "notice.question_sent" if h and h.message_ts else "notice.question_dm"

    def ephemeral(self, h: Handoff, user_id: str, text: str) -> None:
        """A note only ``user_id`` sees, under the card; a DM when there is no card. An answer to what
        they just did, not a stored message: a failure is logged; the DM goes through the outbox."""
        if not h.channel_id:
            self.notice(user_id, text)
            return
        try:
            self.client.chat_postEphemeral(channel=h.channel_id, user=user_id, text=escape(text))
        except SlackApiError as exc:
            log.warning("ephemeral note failed: %s", exc.response.get("error"))
