"""Who a Slack user is, as far as Baton cares: their language, their email, whether they are in CS;
and which Slack user an accounts file's ``csm_email`` is.

Answers are cached for a few minutes: they are asked on every click, and Slack rate-limits lookups.
The csm_email mapping is cached in the database (storage/directory.py) and refreshed by
``resolve_csm_emails`` from the daily cadence job, after an accounts ingest and hourly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.i18n import normalize_locale
from clock import Clock
from storage import Database
from storage.directory import NOT_FOUND, emails_to_look_up, queue_unknown_reports, record_lookup

log = logging.getLogger(__name__)


class Directory:
    def __init__(
        self,
        client: WebClient,
        *,
        default_locale: str,
        cs_members: tuple[str, ...],
        ttl_seconds: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._default_locale = default_locale
        self._cs_users = {m for m in cs_members if not m.startswith("S")}
        self._cs_groups = [m for m in cs_members if m.startswith("S")]
        self._ttl = ttl_seconds
        self._now = monotonic
        self._lock = threading.Lock()
        self._users: dict[str, tuple[float, str, str | None]] = {}  # user -> (when, locale, email)
        self._group_members: tuple[float, frozenset[str]] | None = None

    def locale(self, user_id: str | None) -> str:
        """The user's own Slack language when Slack tells it, else the workspace default (BATON_LOCALE)."""
        if not user_id:
            return self._default_locale
        return self._user(user_id)[0]

    def email(self, user_id: str) -> str | None:
        """The user's profile email (scope users:read.email), from the same users.info call as the
        locale: how the Home tab maps its viewer to their csm_email without another lookup."""
        return self._user(user_id)[1]

    def _user(self, user_id: str) -> tuple[str, str | None]:
        with self._lock:
            hit = self._users.get(user_id)
            if hit and self._now() - hit[0] < self._ttl:
                return hit[1], hit[2]
        try:
            user = self._client.users_info(user=user_id, include_locale=True).get("user") or {}
            locale = normalize_locale(user.get("locale"), self._default_locale)
            email = (user.get("profile") or {}).get("email") or None
        except SlackApiError as exc:
            log.info(
                "users.info failed for %s: %s; using the default locale", user_id, exc.response.get("error")
            )
            locale, email = self._default_locale, None
        except Exception:  # a slow or unreachable API must not cost the user their modal
            log.warning("users.info unreachable for %s; using the default locale", user_id, exc_info=True)
            return self._default_locale, None
        with self._lock:
            self._users[user_id] = (self._now(), locale, email)
        return locale, email

    def is_cs(self, user_id: str) -> bool:
        """Members of BATON_CS_USERS: listed user ids, or members of listed user groups (ids starting S)."""
        if user_id in self._cs_users:
            return True
        if not self._cs_groups:
            return False
        return user_id in self._group_member_ids()

    def _group_member_ids(self) -> frozenset[str]:
        with self._lock:
            cached = self._group_members
            if cached and self._now() - cached[0] < self._ttl:
                return cached[1]
        members: set[str] = set()
        for group in self._cs_groups:
            try:
                members.update(self._client.usergroups_users_list(usergroup=group).get("users") or [])
            except SlackApiError as exc:
                log.warning("usergroups.users.list failed for %s: %s", group, exc.response.get("error"))
        frozen = frozenset(members)
        with self._lock:
            self._group_members = (self._now(), frozen)
        return frozen


@dataclass
class Resolved:
    looked_up: int = 0
    found: int = 0
    unknown: int = 0  # users_not_found
    reported: int = 0  # unknown emails newly queued for the handoff channel
    failed: list[str] = field(default_factory=list)  # emails left for the next run (rate limit, outage)

    def __str__(self) -> str:
        return (
            f"{self.looked_up} csm emails looked up: {self.found} found, {self.unknown} unknown to Slack"
            f" ({self.reported} reported), {len(self.failed)} left for later"
        )


def resolve_csm_emails(db: Database, client: WebClient, clock: Clock, *, limit: int = 200) -> Resolved:
    """Look up the csm_emails not in the cache or stale there (users.lookupByEmail, Tier 4: so at most
    ``limit`` a run, and a 429 ends the run) and store the answers; then queue one report per email
    Slack does not know. Runs outside any request: the Slack calls hold no transaction open."""
    result = Resolved()
    with db.session() as s:
        todo = emails_to_look_up(s, clock())[:limit]
    answers: list[tuple[str, str | None, str | None]] = []
    for i, email in enumerate(todo):
        try:
            user = client.users_lookupByEmail(email=email).get("user") or {}
            answers.append((email, user.get("id"), None if user.get("id") else NOT_FOUND))
        except SlackApiError as exc:
            error = exc.response.get("error") if hasattr(exc.response, "get") else None
            if error == NOT_FOUND:
                answers.append((email, None, NOT_FOUND))
                continue
            log.warning("users.lookupByEmail failed for %s: %s", email, error)
            if getattr(exc.response, "status_code", 200) == 429 or error in ("ratelimited", "missing_scope"):
                result.failed += todo[i:]
                break
            result.failed.append(email)
        except Exception:  # Slack unreachable: the rest waits for the next run
            log.warning(
                "users.lookupByEmail unreachable; %d emails left for later", len(todo) - i, exc_info=True
            )
            result.failed += todo[i:]
            break
    with db.session() as s:
        for email, user_id, error in answers:
            record_lookup(s, email, user_id, error, clock())
        result.reported = queue_unknown_reports(s, clock())
    result.looked_up = len(answers)
    result.found = sum(1 for _, user_id, _ in answers if user_id)
    result.unknown = result.looked_up - result.found
    return result
