"""Who a Slack user is, as far as Baton cares: their language and whether they are in CS.

Answers are cached for a few minutes: they are asked on every click, and Slack rate-limits lookups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.i18n import normalize_locale

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
        self._locales: dict[str, tuple[float, str]] = {}
        self._group_members: tuple[float, frozenset[str]] | None = None

    def locale(self, user_id: str | None) -> str:
        """The user's own Slack language when Slack tells it, else the workspace default (BATON_LOCALE)."""
        if not user_id:
            return self._default_locale
        with self._lock:
            hit = self._locales.get(user_id)
            if hit and self._now() - hit[0] < self._ttl:
                return hit[1]
        try:
            resp = self._client.users_info(user=user_id, include_locale=True)
            locale = normalize_locale((resp.get("user") or {}).get("locale"), self._default_locale)
        except SlackApiError as exc:
            log.info(
                "users.info failed for %s: %s; using the default locale", user_id, exc.response.get("error")
            )
            locale = self._default_locale
        except Exception:  # a slow or unreachable API must not cost the user their modal
            log.warning("users.info unreachable for %s; using the default locale", user_id, exc_info=True)
            return self._default_locale
        with self._lock:
            self._locales[user_id] = (self._now(), locale)
        return locale

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
