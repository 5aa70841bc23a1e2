"""Draining the outbox to Slack: at least once by retrying, at most once by remembering.

A row is claimed (state ``in_flight``, a lease in ``next_attempt_at``) in its own transaction before
the Slack call, and marked ``sent`` with the message ts after it. A row found ``in_flight`` after its
lease ran out means a crash or a lost answer mid-post: before posting again, the channel is searched
for a message carrying the row's id in its metadata (Slack has no idempotency key for
chat.postMessage). 429 answers wait for Retry-After; 5xx and network errors back off; other errors
are retried a few times and then left ``dead`` with the reason, visible to an operator.
Several instances can drain one table: on PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update

from bot.directory import Directory
from bot.i18n import translator
from bot.views.alert_card import alert_card, alert_text, inside_sales_post, thread_note
from bot.views.digest import chart_labels, digest_blocks, digest_text
from bot.views.touches import reminder_blocks, reminder_text, unknown_csm_blocks, unknown_csm_text
from clock import Clock
from digest.chart import render as render_chart
from settings import Settings
from storage import Database
from storage.models import Account, Alert, Outbox

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)
# Refusals a person can fix (invite the bot, renew the token): retried slowly, never dropped.
FIXABLE = {
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "account_inactive",
    "missing_scope",
    "ratelimited",
}
EVENT_TYPE = "baton_outbox"


@dataclass
class Stats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    adopted: int = 0  # found already posted after an ambiguous failure
    errors: list[str] = field(default_factory=list)


class Retry(Exception):
    def __init__(self, after: timedelta, reason: str, *, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.after, self.reason, self.ambiguous = after, reason, ambiguous


class Fatal(Exception):
    pass


def _header(exc: SlackApiError, name: str) -> str | None:
    headers = getattr(exc.response, "headers", None) or {}
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v[0] if isinstance(v, list) else v
    return None


class Delivery:
    def __init__(self, db: Database, client: WebClient, settings: Settings, clock: Clock) -> None:
        # A client of its own with no automatic retry: slack_sdk's default retries a post whose
        # connection dropped, which could post it twice. Retries here go through the outbox instead.
        self.client = WebClient(
            token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=[]
        )
        self.db, self.settings, self.clock = db, settings, clock
        self.tr = translator(settings.locale)
        self.directory = Directory(self.client, default_locale=settings.locale, cs_members=())

    # --- claiming ---------------------------------------------------------------------------------
    def _candidates(self, limit: int, alert_id: int | None) -> list[tuple[int, str, int]]:
        now = self.clock()
        with self.db.session() as s:
            stmt = (
                select(Outbox.id, Outbox.state, Outbox.attempts)
                .where(Outbox.state.in_(("pending", "in_flight")), Outbox.next_attempt_at <= now)
                .order_by(Outbox.id)
                .limit(limit)
            )
            if alert_id is not None:
                stmt = stmt.where(Outbox.alert_id == alert_id)
            return [(i, st, n) for i, st, n in s.execute(stmt)]

    def _claim(self, row_id: int, state: str, attempts: int) -> int | None:
        """Take one row just before sending it: a conditional UPDATE that only one drain can win, on
        SQLite as on PostgreSQL. Returns the claim token (the new attempt count) or None if lost."""
        now = self.clock()
        with self.db.session() as s:
            won = s.execute(
                update(Outbox)
                .where(
                    Outbox.id == row_id,
                    Outbox.state == state,
                    Outbox.attempts == attempts,
                    Outbox.next_attempt_at <= now,
                )
                .values(
                    state="in_flight",
                    attempts=attempts + 1,
                    next_attempt_at=now + LEASE,
                    # a row still in flight when its lease ran out: the last call's outcome is unknown
                    ambiguous=Outbox.ambiguous | (Outbox.state == "in_flight"),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        return attempts + 1 if won == 1 else None

    def run(self, *, limit: int = 50, alert_id: int | None = None) -> Stats:
        stats = Stats()
        blocked: set[int] = set()  # alerts whose post did not go out: their updates and notes wait
        for row_id, state, attempts in self._candidates(limit, alert_id):
            token = self._claim(row_id, state, attempts)
            if token is not None:
                self._deliver_one(row_id, token, blocked, stats)
        return stats

    # --- one row ------------------------------------------------------------------------------------
    def _deliver_one(self, row_id: int, token: int, blocked: set[int], stats: Stats) -> None:
        with self.db.session() as s:
            row = s.get(Outbox, row_id)
            assert row is not None
            alert = s.get(Alert, row.alert_id) if row.alert_id else None
            account = s.get(Account, alert.account_id) if alert else None
            action, payload, created, ambiguous = (
                row.action,
                dict(row.payload or {}),
                row.created_at,
                row.ambiguous,
            )
        try:
            if alert is not None and alert.id in blocked:
                raise Retry(timedelta(seconds=5), "waiting for the alert's first post")
            ts = self._send(row_id, action, payload, alert, account, ambiguous, created, stats)
        except Retry as r:
            if alert is not None:
                blocked.add(alert.id)
            self._finish(
                row_id,
                token,
                state="pending",
                error=r.reason,
                next_at=self.clock() + r.after,
                ambiguous=ambiguous or r.ambiguous,
            )
            stats.retried += 1
            return
        except Fatal as f:
            if alert is not None:
                blocked.add(alert.id)
            dead = token >= 5
            self._finish(
                row_id,
                token,
                state="dead" if dead else "pending",
                error=str(f),
                next_at=self.clock() + timedelta(minutes=2**token),
                ambiguous=ambiguous,
            )
            stats.dead += dead
            stats.retried += not dead
            stats.errors.append(str(f))
            return
        self._finish(
            row_id,
            token,
            state="sent",
            ts=ts,
            ambiguous=False,
            alert_id=alert.id if alert and action == "post" else None,
            channel=payload.get("_channel"),
            permalink=payload.get("_permalink"),
        )
        stats.sent += 1

    def _finish(
        self,
        row_id: int,
        token: int,
        *,
        state: str,
        ambiguous: bool,
        error: str | None = None,
        next_at: datetime | None = None,
        ts: str | None = None,
        alert_id: int | None = None,
        channel: str | None = None,
        permalink: str | None = None,
    ) -> None:
        """Record the outcome, only if this drain still holds the claim (token = attempt count)."""
        with self.db.session() as s:
            row = s.get(Outbox, row_id)
            if row is None or row.attempts != token or row.state != "in_flight":
                log.warning("outbox %s was taken over by another drain; leaving its outcome to it", row_id)
                return
            row.state, row.last_error, row.ambiguous = state, error, ambiguous
            if next_at is not None:
                row.next_attempt_at = next_at
            if state == "sent":
                row.sent_at, row.result_ts = self.clock(), ts
            if alert_id is not None and ts and channel:
                alert = s.get(Alert, alert_id)
                assert alert is not None
                alert.channel_id, alert.message_ts, alert.permalink = channel, ts, permalink

    # --- Slack ------------------------------------------------------------------------------------
    def _channel_for(self, alert: Alert) -> str:
        if alert.kind == "upsell":
            return self.settings.rules.alerts.upsell_channel or self.settings.handoff_channel
        return self.settings.alert_channel

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 200)
            error = exc.response.get("error") if hasattr(exc.response, "get") else None
            if status == 429:
                after = int(_header(exc, "Retry-After") or 30)
                raise Retry(timedelta(seconds=after), f"rate limited; retry after {after}s") from exc
            if status >= 500:
                raise Retry(timedelta(seconds=30), f"Slack answered {status}") from exc
            if error in FIXABLE:  # someone must invite Baton or fix a token; keep the alert until then
                raise Retry(
                    timedelta(minutes=15), f"Slack refused: {error} (retrying every 15 minutes)"
                ) from exc
            raise Fatal(f"Slack refused: {error or status}") from exc
        except OSError as exc:  # timeouts and resets: the message may or may not have landed
            raise Retry(timedelta(seconds=30), f"network: {exc}", ambiguous=True) from exc

    def _already_posted(
        self, channel: str, row_id: int, created: datetime, thread_ts: str | None
    ) -> str | None:
        """The ts of a message carrying this row's id, if an earlier attempt did land (paged search)."""
        oldest = f"{(created - timedelta(minutes=5)).timestamp():.6f}"
        cursor = None
        for _ in range(20):
            if thread_ts:
                resp = self._call(
                    self.client.conversations_replies,
                    channel=channel,
                    ts=thread_ts,
                    oldest=oldest,
                    limit=200,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            else:
                resp = self._call(
                    self.client.conversations_history,
                    channel=channel,
                    oldest=oldest,
                    limit=200,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            for msg in resp.get("messages") or []:
                meta = msg.get("metadata") or {}
                if (
                    meta.get("event_type") == EVENT_TYPE
                    and (meta.get("event_payload") or {}).get("outbox_id") == row_id
                ):
                    return msg.get("ts")
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _post(
        self,
        row_id: int,
        channel: str,
        ambiguous: bool,
        created: datetime,
        stats: Stats,
        thread_ts: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Every post, top-level or in a thread, carries its row id: a retry after an unknown outcome
        looks for it first, so nothing is posted twice."""
        if ambiguous:
            found = self._already_posted(channel, row_id, created, thread_ts)
            if found:
                stats.adopted += 1
                return found
        meta = {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": row_id}}
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        resp = self._call(
            self.client.chat_postMessage,
            channel=channel,
            metadata=meta,
            unfurl_links=False,
            **extra,
            **kwargs,
        )
        return resp["ts"]

    def _send(
        self,
        row_id: int,
        action: str,
        payload: dict[str, Any],
        alert: Alert | None,
        account: Account | None,
        ambiguous: bool,
        created: datetime,
        stats: Stats,
    ) -> str | None:
        if action == "digest":
            channel = self.settings.digest_channel
            if not channel:
                raise Retry(timedelta(hours=1), "no channel configured (BATON_DIGEST_CHANNEL)")
            report = payload["report"]
            return self._post(
                row_id,
                channel,
                ambiguous,
                created,
                stats,
                text=digest_text(self.tr, report),
                blocks=digest_blocks(self.tr, report),
            )
        if action == "digest_chart":
            return self._upload_chart(payload)
        if action == "reminders":
            return self._remind(row_id, payload, ambiguous, created, stats)
        if action == "csm_unknown":  # csm_email Slack does not know: CS leads fix the file or assign
            channel = self.settings.handoff_channel
            if not channel:
                raise Retry(timedelta(hours=1), "unknown CSM emails are reported in BATON_HANDOFF_CHANNEL")
            return self._post(
                row_id,
                channel,
                ambiguous,
                created,
                stats,
                text=unknown_csm_text(self.tr, payload),
                blocks=unknown_csm_blocks(self.tr, payload),
            )
        if alert is None or account is None:
            raise Fatal("the alert no longer exists")
        blocks = alert_card(self.tr, alert, account, rules=self.settings.rules)
        names = self.settings.rules.health.metric_names
        text = alert_text(self.tr, alert, account)
        if action == "post":
            channel = self._channel_for(alert)
            if not channel:
                raise Retry(
                    timedelta(hours=1), "no channel configured (BATON_ALERT_CHANNEL / upsell_channel)"
                )
            payload["_channel"] = channel
            ts = self._post(row_id, channel, ambiguous, created, stats, text=text, blocks=blocks)
            # only for links from the Home tab: nothing may fail the row once the card is posted
            with contextlib.suppress(Exception):
                payload["_permalink"] = self.client.chat_getPermalink(channel=channel, message_ts=ts)[
                    "permalink"
                ]
            return ts
        if not alert.message_ts:
            if self._post_pending(alert.id):
                if action == "update":
                    return None  # the post, still to come, renders the latest state anyway
                raise Retry(timedelta(seconds=10), "waiting for the alert's first post")
            raise Fatal("the alert card was never posted")
        if action == "update":
            self._call(
                self.client.chat_update,
                channel=alert.channel_id,
                ts=alert.message_ts,
                text=text,
                blocks=blocks,
            )
            return alert.message_ts
        if action == "thread":
            note = thread_note(self.tr, payload, names)
            return self._post(
                row_id,
                alert.channel_id or "",
                ambiguous,
                created,
                stats,
                thread_ts=alert.message_ts,
                text=note,
            )
        if action == "handoff_is":
            channel = self.settings.rules.alerts.inside_sales_channel or self._channel_for(alert)
            permalink = None
            with contextlib.suppress(SlackApiError):
                permalink = self.client.chat_getPermalink(
                    channel=alert.channel_id, message_ts=alert.message_ts
                )["permalink"]
            actor = payload.get("actor", "")
            is_blocks = inside_sales_post(self.tr, alert, account, actor, permalink, names)
            return self._post(row_id, channel, ambiguous, created, stats, text=text, blocks=is_blocks)
        raise Fatal(f"unknown outbox action {action!r}")

    def _remind(
        self, row_id: int, payload: dict[str, Any], ambiguous: bool, created: datetime, stats: Stats
    ) -> str:
        """A CSM's reminders go to their DM, in their language; reminders for accounts nobody owns yet
        go to the handoff channel, where CS leads assign them."""
        recipient = payload.get("recipient")
        if recipient:
            tr = translator(self.directory.locale(recipient))
            # the IM channel's id, not the user id: an unknown outcome is looked up in its history
            channel = self._call(self.client.conversations_open, users=recipient)["channel"]["id"]
        else:
            tr, channel = self.tr, self.settings.handoff_channel
            if not channel:
                raise Retry(
                    timedelta(hours=1), "reminders for accounts without a CSM need BATON_HANDOFF_CHANNEL"
                )
        return self._post(
            row_id,
            channel,
            ambiguous,
            created,
            stats,
            text=reminder_text(tr, payload),
            blocks=reminder_blocks(tr, payload),
        )

    def _upload_chart(self, payload: dict[str, Any]) -> str | None:
        """The chart goes into the digest's thread, once the digest itself is posted."""
        with self.db.session() as s:
            digest_row = s.get(Outbox, payload["digest_row"])
            state, ts, report = (
                digest_row.state,
                digest_row.result_ts,
                (digest_row.payload or {}).get("report"),
            )
        if state != "sent":
            if state == "dead":
                raise Fatal("the digest was never posted")
            raise Retry(timedelta(seconds=10), "waiting for the digest to be posted")
        png = render_chart(report["trend"], chart_labels(self.tr))
        self._call(
            self.client.files_upload_v2,
            channel=self.settings.digest_channel,
            thread_ts=ts,
            file=png,
            filename=f"baton-digest-{report['as_of']}.png",
            title=chart_labels(self.tr).title,
        )
        return ts

    def _post_pending(self, alert_id: int) -> bool:
        with self.db.session() as s:
            return (
                s.scalar(
                    select(Outbox.id)
                    .where(
                        Outbox.alert_id == alert_id,
                        Outbox.action == "post",
                        Outbox.state.in_(("pending", "in_flight")),
                    )
                    .limit(1)
                )
                is not None
            )


def pending_count(db: Database) -> int:
    from sqlalchemy import func

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.state != "sent")) or 0
