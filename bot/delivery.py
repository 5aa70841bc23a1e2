"""Draining the outbox to Slack: at least once by retrying, at most once by remembering.

Every message Baton sends is a row: alert cards, their updates and thread notes, handoff cards,
their updates, notes and questions, DMs, nudges, notices, reminders, the digest. ``SENDERS`` names one
sender per kind, which renders the row from the database as it is now and sends it; the loop below
only claims, sends, finishes and retries.

A row is claimed (state ``in_flight``, a lease in ``next_attempt_at``) in its own transaction before
the Slack call, and marked ``sent`` with the message ts after it. A row found ``in_flight`` after its
lease ran out means a crash or a lost answer mid-post: before posting again, the channel is searched
for a message carrying the row's id in its metadata (Slack has no idempotency key for
chat.postMessage). 429 answers wait for Retry-After (the normal backoff when it is not a number);
5xx and network errors back off; other errors are retried a few times and then left ``dead`` with
the reason, visible to an operator. Several instances can drain one table: the claim is a conditional
UPDATE (state and attempt count unchanged) that one drain wins, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.directory import Directory
from bot.i18n import Translator, translator
from bot.text import escape
from bot.views.alert_card import alert_card, alert_text, inside_sales_post, thread_note
from bot.views.crm import lead_note, nudge_dm, won_deal_dm, won_deal_started
from bot.views.digest import chart_labels, digest_blocks, digest_text
from bot.views.handoff_card import assigned_dm, card, card_text, nudge
from bot.views.touches import reminder_blocks, reminder_text, unknown_csm_blocks, unknown_csm_text
from clock import Clock
from crm import writeback
from crm.model import WonDeal
from digest.chart import render as render_chart
from handoff import service as handoffs
from settings import Settings
from storage import Database
from storage.directory import FOUND_TTL, MISS_TTL, NOT_FOUND, email_key, record_lookup
from storage.models import Account, Alert, CrmDeal, Handoff, Outbox, SlackUserEmail
from storage.outbox import first_post_pending

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


BACKOFF = timedelta(seconds=30)


def retry_after(value: str | None) -> timedelta:
    """Slack's Retry-After in seconds; anything else (absent, a date, "soon") is the normal backoff,
    so a bad header never parks a row for its whole lease."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        seconds = None
    if seconds is None or not 0 <= seconds < 3600:  # also refuses nan and inf
        return BACKOFF
    return timedelta(seconds=max(1, int(seconds + 0.999)))


@dataclass
class Job:
    """One claimed row, as its sender needs it. ``payload`` keys with a leading underscore are what a
    sender learned (the channel, a permalink) for the row's recorder."""

    row_id: int
    action: str
    payload: dict[str, Any]
    created: datetime
    ambiguous: bool
    stats: Stats
    alert: Alert | None = None
    account: Account | None = None
    handoff_id: int | None = None

    def card_key(self) -> tuple[str, int] | None:
        if self.alert is not None:
            return ("alert", self.alert.id)
        return ("handoff", self.handoff_id) if self.handoff_id else None


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
    def _candidates(
        self, limit: int, alert_id: int | None, handoff_id: int | None, ids: Collection[int] | None
    ) -> list[tuple[int, str, int]]:
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
            if handoff_id is not None:
                stmt = stmt.where(Outbox.handoff_id == handoff_id)
            if ids is not None:
                stmt = stmt.where(Outbox.id.in_(list(ids)))
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

    def run(
        self,
        *,
        limit: int = 50,
        alert_id: int | None = None,
        handoff_id: int | None = None,
        ids: Collection[int] | None = None,
    ) -> Stats:
        """Send what is due: everything, or one alert's / one handoff's messages, or the given rows
        (a listener kicks delivery of what it just queued; the scheduler's job picks up the rest)."""
        stats = Stats()
        blocked: set[tuple[str, int]] = set()  # cards whose first post did not go out: the rest waits
        for row_id, state, attempts in self._candidates(limit, alert_id, handoff_id, ids):
            token = self._claim(row_id, state, attempts)
            if token is not None:
                self._deliver_one(row_id, token, blocked, stats)
        return stats

    # --- one row ------------------------------------------------------------------------------------
    def _load(self, row_id: int, stats: Stats) -> Job:
        with self.db.session() as s:
            row = s.get(Outbox, row_id)
            assert row is not None
            alert = s.get(Alert, row.alert_id) if row.alert_id else None
            return Job(
                row_id=row_id,
                action=row.action,
                payload=dict(row.payload or {}),
                created=row.created_at,
                ambiguous=row.ambiguous,
                stats=stats,
                alert=alert,
                account=s.get(Account, alert.account_id) if alert else None,
                handoff_id=row.handoff_id,
            )

    def _deliver_one(self, row_id: int, token: int, blocked: set[tuple[str, int]], stats: Stats) -> None:
        job = self._load(row_id, stats)
        kind = SENDERS.get(job.action)
        key = job.card_key()
        try:
            if kind is None:
                raise Fatal(f"unknown outbox action {job.action!r}")
            if key in blocked and kind.after_first_post:
                raise Retry(timedelta(seconds=5), "waiting for the card's first post")
            ts = kind.send(self, job)
        except Retry as r:
            if key and kind and (kind.first_post or kind.after_first_post):
                blocked.add(key)
            self._finish(
                job,
                token,
                state="pending",
                error=r.reason,
                next_at=self.clock() + r.after,
                ambiguous=job.ambiguous or r.ambiguous,
            )
            stats.retried += 1
            return
        except Fatal as f:
            if key and kind and (kind.first_post or kind.after_first_post):
                blocked.add(key)
            dead = token >= 5
            self._finish(
                job,
                token,
                state="dead" if dead else "pending",
                error=str(f),
                next_at=self.clock() + timedelta(minutes=2**token),
                ambiguous=job.ambiguous,
            )
            stats.dead += dead
            stats.retried += not dead
            stats.errors.append(str(f))
            return
        self._finish(job, token, state="sent", ts=ts, ambiguous=False, record=kind.record)
        stats.sent += 1

    def _finish(
        self,
        job: Job,
        token: int,
        *,
        state: str,
        ambiguous: bool,
        error: str | None = None,
        next_at: datetime | None = None,
        ts: str | None = None,
        record: Recorder | None = None,
    ) -> None:
        """Record the outcome, only if this drain still holds the claim (token = attempt count); a
        sent first post also records where the card now lives, in the same transaction."""
        with self.db.session() as s:
            row = s.get(Outbox, job.row_id)
            if row is None or row.attempts != token or row.state != "in_flight":
                log.warning(
                    "outbox %s was taken over by another drain; leaving its outcome to it", job.row_id
                )
                return
            row.state, row.last_error, row.ambiguous = state, error, ambiguous
            if next_at is not None:
                row.next_attempt_at = next_at
            if state == "sent":
                row.sent_at, row.result_ts = self.clock(), ts
                if record is not None and ts:
                    record(s, job, ts)

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
                after = retry_after(_header(exc, "Retry-After"))
                raise Retry(after, f"rate limited; retry after {after.seconds}s") from exc
            if status >= 500:
                raise Retry(BACKOFF, f"Slack answered {status}") from exc
            if error in FIXABLE:  # someone must invite Baton or fix a token; keep the message until then
                raise Retry(
                    timedelta(minutes=15), f"Slack refused: {error} (retrying every 15 minutes)"
                ) from exc
            raise Fatal(f"Slack refused: {error or status}") from exc
        except OSError as exc:  # timeouts and resets: the message may or may not have landed
            raise Retry(BACKOFF, f"network: {exc}", ambiguous=True) from exc

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
        job: Job,
        channel: str,
        thread_ts: str | None = None,
        lookup_in: Callable[[], str] | None = None,
        **kwargs: Any,
    ) -> str:
        """Every post, top-level or in a thread, carries its row id: a retry after an unknown outcome
        looks for it first (in ``lookup_in()``'s channel for a DM), so nothing is posted twice."""
        if job.ambiguous:
            where = lookup_in() if lookup_in else channel
            found = self._already_posted(where, job.row_id, job.created, thread_ts)
            if found:
                job.stats.adopted += 1
                return found
        meta = {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": job.row_id}}
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

    def _to_channel(self, job: Job, channel: str | None, missing: str, **message: Any) -> str:
        """A post to a configured channel; with none configured the row waits an hour, not dies."""
        if not channel:
            raise Retry(timedelta(hours=1), missing)
        return self._post(job, channel, **message)

    def _dm(self, job: Job, user: str, **message: Any) -> str:
        """A direct message: posted to the user id; an unknown outcome is looked up in the IM channel."""
        return self._post(job, user, lookup_in=lambda: self._im(user), **message)

    def _im(self, user: str) -> str:
        return self._call(self.client.conversations_open, users=user)["channel"]["id"]

    def _tr_for(self, user: str | None) -> Translator:
        return translator(self.directory.locale(user)) if user else self.tr

    def _permalink(self, channel: str, ts: str) -> str | None:
        """Only for links (Home tab, inside sales): nothing may fail the row once the card is posted."""
        with contextlib.suppress(Exception):
            return self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
        return None

    # --- senders: alerts, digest, reminders ----------------------------------------------------------
    def _alert(self, job: Job) -> tuple[Alert, Account]:
        if job.alert is None or job.account is None:
            raise Fatal("the alert no longer exists")
        return job.alert, job.account

    def _posted_alert(self, job: Job) -> tuple[Alert, Account] | None:
        """The alert, once its card is posted; None for an update whose card is still to come (it
        renders the latest state anyway)."""
        alert, account = self._alert(job)
        if alert.message_ts:
            return alert, account
        with self.db.session() as s:
            pending = first_post_pending(s, alert_id=alert.id)
        if not pending:
            raise Fatal("the alert card was never posted")
        if job.action == "update":
            return None
        raise Retry(timedelta(seconds=10), "waiting for the alert's first post")

    def send_alert_post(self, job: Job) -> str:
        alert, account = self._alert(job)
        channel = self._channel_for(alert)
        ts = self._to_channel(
            job,
            channel,
            "no channel configured (BATON_ALERT_CHANNEL / upsell_channel)",
            text=alert_text(self.tr, alert, account),
            blocks=alert_card(self.tr, alert, account, rules=self.settings.rules),
        )
        job.payload["_channel"], job.payload["_permalink"] = channel, self._permalink(channel, ts)
        return ts

    def send_alert_update(self, job: Job) -> str | None:
        posted = self._posted_alert(job)
        if posted is None:
            return None
        alert, account = posted
        self._call(
            self.client.chat_update,
            channel=alert.channel_id,
            ts=alert.message_ts,
            text=alert_text(self.tr, alert, account),
            blocks=alert_card(self.tr, alert, account, rules=self.settings.rules),
        )
        return alert.message_ts

    def send_alert_thread(self, job: Job) -> str | None:
        posted = self._posted_alert(job)
        assert posted is not None
        alert, _ = posted
        note = thread_note(self.tr, job.payload, self.settings.rules.health.metric_names)
        return self._post(job, alert.channel_id or "", thread_ts=alert.message_ts, text=note)

    def send_handoff_is(self, job: Job) -> str | None:
        posted = self._posted_alert(job)
        assert posted is not None
        alert, account = posted
        channel = self.settings.rules.alerts.inside_sales_channel or self._channel_for(alert)
        permalink = self._permalink(alert.channel_id or "", alert.message_ts or "")
        names = self.settings.rules.health.metric_names
        blocks = inside_sales_post(self.tr, alert, account, job.payload.get("actor", ""), permalink, names)
        return self._post(job, channel, text=alert_text(self.tr, alert, account), blocks=blocks)

    def send_digest(self, job: Job) -> str:
        report = job.payload["report"]
        return self._to_channel(
            job,
            self.settings.digest_channel,
            "no channel configured (BATON_DIGEST_CHANNEL)",
            text=digest_text(self.tr, report),
            blocks=digest_blocks(self.tr, report),
        )

    def send_csm_unknown(self, job: Job) -> str:
        """A csm_email Slack does not know: CS leads fix the file or assign."""
        return self._to_channel(
            job,
            self.settings.handoff_channel,
            "unknown CSM emails are reported in BATON_HANDOFF_CHANNEL",
            text=unknown_csm_text(self.tr, job.payload),
            blocks=unknown_csm_blocks(self.tr, job.payload),
        )

    def send_reminders(self, job: Job) -> str:
        """A CSM's reminders go to their DM, in their language; reminders for accounts nobody owns yet
        go to the handoff channel, where CS leads assign them."""
        recipient = job.payload.get("recipient")
        tr = self._tr_for(recipient)
        message = {"text": reminder_text(tr, job.payload), "blocks": reminder_blocks(tr, job.payload)}
        if recipient:
            # the IM channel's id, not the user id: an unknown outcome is looked up in its history
            return self._post(job, self._im(recipient), **message)
        return self._to_channel(
            job,
            self.settings.handoff_channel,
            "reminders for accounts without a CSM need BATON_HANDOFF_CHANNEL",
            **message,
        )

    def send_digest_chart(self, job: Job) -> str | None:
        """The chart goes into the digest's thread, once the digest itself is posted."""
        with self.db.session() as s:
            digest_row = s.get(Outbox, job.payload["digest_row"])
            assert digest_row is not None
            state, ts, report = (
                digest_row.state,
                digest_row.result_ts,
                (digest_row.payload or {}).get("report"),
            )
        if state != "sent":
            if state == "dead":
                raise Fatal("the digest was never posted")
            raise Retry(timedelta(seconds=10), "waiting for the digest to be posted")
        assert report is not None
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

    # --- senders: handoffs (rendered from the handoff as it is when sent) ----------------------------
    def _handoff(self, job: Job, render: Callable[[Handoff], Any]) -> tuple[Handoff, Any, bool]:
        """The handoff, what ``render`` made of it inside the session, and whether its card is queued."""
        with self.db.session() as s:
            if job.handoff_id is None or s.get(Handoff, job.handoff_id) is None:
                raise Fatal("the handoff no longer exists")
            h = handoffs.get(s, job.handoff_id)
            pending = not h.message_ts and first_post_pending(s, handoff_id=h.id)
            return h, render(h), pending

    def send_card(self, job: Job) -> str:
        tr, tz = self.tr, self.settings.rules.schedule.timezone
        h, (text, blocks), _ = self._handoff(job, lambda h: (card_text(tr, h), card(tr, h, timezone=tz)))
        if h.message_ts and h.channel_id:  # a second card row (an edit re-queued it): already there
            job.payload["_channel"], job.payload["_permalink"] = h.channel_id, h.permalink
            return h.message_ts
        channel = job.payload["channel"]
        ts = self._post(job, channel, text=text, blocks=blocks)
        job.payload["_channel"], job.payload["_permalink"] = channel, self._permalink(channel, ts)
        return ts

    def send_card_update(self, job: Job) -> str | None:
        tr, tz = self.tr, self.settings.rules.schedule.timezone
        h, (text, blocks), _ = self._handoff(job, lambda h: (card_text(tr, h), card(tr, h, timezone=tz)))
        if not (h.channel_id and h.message_ts):
            return None  # the card still to come renders the latest state; a card never posted has none
        self._call(self.client.chat_update, channel=h.channel_id, ts=h.message_ts, text=text, blocks=blocks)
        return h.message_ts

    def _in_thread(self, job: Job, h: Handoff, pending: bool) -> str | None:
        if h.channel_id and h.message_ts:
            return self._post(job, h.channel_id, thread_ts=h.message_ts, text=job.payload["text"])
        if pending:
            raise Retry(timedelta(seconds=10), "waiting for the handoff card's first post")
        return None

    def send_card_note(self, job: Job) -> str | None:
        """A note in the card's thread; dropped when the card was never posted (it shows the state)."""
        h, _, pending = self._handoff(job, lambda h: None)
        return self._in_thread(job, h, pending)

    def send_question(self, job: Job) -> str:
        """In the card's thread; to the submitter directly when the card never made it to a channel."""
        h, _, pending = self._handoff(job, lambda h: None)
        ts = self._in_thread(job, h, pending)
        return ts or self._dm(job, h.submitted_by, text=job.payload["text"])

    def send_assigned_dm(self, job: Job) -> str:
        csm = job.payload["csm"]
        tr = self._tr_for(csm)
        _, (text, blocks), _ = self._handoff(job, lambda h: assigned_dm(tr, h, job.payload["assigner"]))
        return self._dm(job, csm, text=text, blocks=blocks)

    def send_nudge(self, job: Job) -> str | None:
        with self.db.session() as s:
            h = s.get(Handoff, job.handoff_id) if job.handoff_id else None
            submitter = h.submitted_by if h else None
        tr = self._tr_for(submitter)
        _, message, _ = self._handoff(job, lambda h: nudge(tr, h))
        if message is None or submitter is None:
            return None  # completed meanwhile: nothing to ask for
        text, blocks = message
        return self._dm(job, submitter, text=text, blocks=blocks)

    def send_notice(self, job: Job) -> str:
        """Plain text is escaped here; a private answer (``Publisher.answer_dm``) was built formatted."""
        p = job.payload
        if not p.get("formatted"):
            return self._dm(job, p["user"], text=escape(p["text"]))
        blocks = {"blocks": p["blocks"]} if p.get("blocks") else {}
        return self._dm(job, p["user"], text=p["text"], **blocks)

    # --- senders: a won CRM deal (crm.sync.announce / queue_nudges) ---------------------------------
    def _slack_user(self, email: str | None) -> str | None:
        """The Slack user of a deal owner's email: the cached answer when fresh (a week found, a day
        missed), else users.lookupByEmail, cached. So a retry after an unknown outcome goes to the same
        place and finds its earlier post there. None when Slack knows no such user."""
        if not email:
            return None
        key, now = email_key(email), self.clock()
        with self.db.session() as s:
            row = s.get(SlackUserEmail, key)
            ttl = FOUND_TTL if row is not None and row.user_id else MISS_TTL
            if row is not None and (row.user_id or row.error == NOT_FOUND) and now - row.looked_up_at < ttl:
                return row.user_id
        try:
            user: str | None = self._call(self.client.users_lookupByEmail, email=key)["user"]["id"]
        except Fatal as exc:
            cause = exc.__cause__
            if not (isinstance(cause, SlackApiError) and cause.response.get("error") == NOT_FOUND):
                raise
            user = None
        with self.db.session() as s:
            record_lookup(s, key, user, None if user else NOT_FOUND, now)
        return user

    def _to_lead(self, job: Job, **message: Any) -> str:
        """The sales lead (``crm.sales_lead``: a user's DM or a channel), else the handoff channel."""
        lead = self.settings.rules.crm.sales_lead
        if lead[:1] in ("U", "W"):
            job.payload["_channel"] = lead
            return self._dm(job, lead, **message)
        job.payload["_channel"] = lead or self.settings.handoff_channel
        return self._to_channel(
            job,
            lead or self.settings.handoff_channel,
            "won deals without a Slack owner need crm.sales_lead or BATON_HANDOFF_CHANNEL",
            **message,
        )

    def send_won_deal(self, job: Job) -> str | None:
        """The deal owner's "Start handoff" DM (``step`` dm), the one nudge, the word to the sales lead.
        Rendered from ``crm_deals`` as it is now: once a handoff is started, nudges are dropped."""
        with self.db.session() as s:
            row = s.get(CrmDeal, job.payload.get("crm_deal"))
            if row is None:
                raise Fatal("the won deal no longer exists")
            deal, row_id, started = WonDeal.from_json(row.deal), row.id, row.handoff_id is not None
        step = job.payload.get("step", "dm")
        if step == "started":
            return self._won_deal_started(job, deal)
        if started and step != "dm":
            return None
        owner = self._slack_user(deal.owner_email)
        tr, hours = self._tr_for(owner), self.settings.rules.crm.nudge_hours
        if step == "nudge":
            if owner is None:
                return None  # nobody to remind: the sales lead hears of it (step lead)
            text, blocks = nudge_dm(tr, deal, row_id, owner, hours)
            return self._dm(job, owner, text=text, blocks=blocks)
        if step == "lead":
            text, blocks = lead_note(self.tr, deal, row_id, owner, hours)
            return self._to_lead(job, text=text, blocks=blocks)
        if owner is None:
            text, blocks = won_deal_dm(self.tr, deal, row_id, None)
            return self._to_lead(job, text=text, blocks=blocks)
        text, blocks = won_deal_dm(tr, deal, row_id, owner)
        job.payload["_channel"] = owner
        return self._dm(job, owner, text=text, blocks=blocks)

    def _won_deal_started(self, job: Job, deal: WonDeal) -> str | None:
        """The "Start handoff" DM edited once its handoff is submitted: no button left to click, a link
        to the card. Nothing to edit when the DM was never posted (or posted before this was kept)."""
        with self.db.session() as s:
            row = s.get(CrmDeal, job.payload.get("crm_deal"))
            h = s.get(Handoff, row.handoff_id) if row is not None and row.handoff_id else None
            where, ts = (row.dm_channel, row.dm_ts) if row is not None else (None, None)
            by, card = (h.handed_off_by, h.permalink) if h is not None else (None, None)
        if not where or not ts:
            return None
        if card is None and h is not None:
            with self.db.session() as s:
                if first_post_pending(s, handoff_id=h.id):
                    raise Retry(timedelta(seconds=10), "waiting for the handoff card's link")
        channel = self._im(where) if where[:1] in ("U", "W") else where
        tr = self._tr_for(where if where[:1] in ("U", "W") else None)
        text, blocks = won_deal_started(tr, deal, by, card)
        self._call(self.client.chat_update, channel=channel, ts=ts, text=text, blocks=blocks)
        return ts


Sender = Callable[[Delivery, Job], "str | None"]
Recorder = Callable[[Session, Job, str], None]


def _crm_writeback(d: Delivery, job: Job) -> None:
    """The handoff into the CRM (crm/writeback.py writes it; delivery only dispatches and retries). One
    write-back per handoff at a time: a second row sent while another is in flight (an accept right
    after a submit) would not find the first one's object yet and create its own."""
    with d.db.session() as s:
        busy = s.scalar(
            select(Outbox.id)
            .where(
                Outbox.action == job.action,
                Outbox.handoff_id == job.handoff_id,
                Outbox.id != job.row_id,
                Outbox.state == "in_flight",
                Outbox.next_attempt_at > d.clock(),
            )
            .limit(1)
        )
    if busy is not None:
        raise Retry(timedelta(seconds=10), "another write-back of this handoff is in flight")
    try:
        writeback.send(
            d, job.handoff_id, job.payload, created=job.created, words=d.tr, email_of=d.directory.email
        )
    except writeback.Later as exc:
        raise Retry(exc.after, exc.reason) from exc
    except writeback.Failed as exc:
        raise Fatal(str(exc)) from exc
    except Exception as exc:  # a CRM answer of an unexpected shape: give up on the row, log, go on
        raise Fatal(f"{type(exc).__name__}: {exc}") from exc


def _record_won_deal(s: Session, job: Job, ts: str) -> None:
    """Where the "Start handoff" DM went, for its edit once the handoff starts."""
    row = s.get(CrmDeal, job.payload.get("crm_deal"))
    if row is not None and job.payload.get("step", "dm") == "dm" and job.payload.get("_channel"):
        row.dm_channel, row.dm_ts = job.payload["_channel"], ts


def _record_alert_post(s: Session, job: Job, ts: str) -> None:
    alert = s.get(Alert, job.alert.id) if job.alert else None
    if alert is not None and job.payload.get("_channel"):
        alert.channel_id, alert.message_ts = job.payload["_channel"], ts
        alert.permalink = job.payload.get("_permalink")


def _record_card(s: Session, job: Job, ts: str) -> None:
    assert job.handoff_id is not None
    handoffs.record_post(
        s,
        handoff_id=job.handoff_id,
        channel_id=job.payload["_channel"],
        ts=ts,
        permalink=job.payload.get("_permalink"),
    )


@dataclass(frozen=True)
class Kind:
    """How one kind of message is sent. ``first_post`` creates the card the others of its alert or
    handoff update or reply to; ``after_first_post`` kinds wait while it has not gone out."""

    send: Sender
    record: Recorder | None = None
    first_post: bool = False
    after_first_post: bool = False


SENDERS: dict[str, Kind] = {
    # alerts: every message of an alert waits for its card
    "post": Kind(Delivery.send_alert_post, _record_alert_post, first_post=True, after_first_post=True),
    "update": Kind(Delivery.send_alert_update, after_first_post=True),
    "thread": Kind(Delivery.send_alert_thread, after_first_post=True),
    "handoff_is": Kind(Delivery.send_handoff_is, after_first_post=True),
    # handoffs: DMs go out whatever became of the card; updates and notes wait for it
    "card": Kind(Delivery.send_card, _record_card, first_post=True),
    "card_update": Kind(Delivery.send_card_update, after_first_post=True),
    "card_note": Kind(Delivery.send_card_note, after_first_post=True),
    "question": Kind(Delivery.send_question, after_first_post=True),
    "dm_assigned": Kind(Delivery.send_assigned_dm),
    "nudge": Kind(Delivery.send_nudge),
    "notice": Kind(Delivery.send_notice),
    # the rest
    "reminders": Kind(Delivery.send_reminders),
    "csm_unknown": Kind(Delivery.send_csm_unknown),
    "digest": Kind(Delivery.send_digest),
    "digest_chart": Kind(Delivery.send_digest_chart),
    # the owner's "Start handoff" DM (edited once the handoff starts), its nudge, the word to the lead
    "crm_won_deal": Kind(Delivery.send_won_deal, _record_won_deal),
    "crm_writeback": Kind(_crm_writeback),  # not Slack: the handoff written back into HubSpot / Salesforce
}


def pending_count(db: Database) -> int:
    from sqlalchemy import func

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.state != "sent")) or 0
