"""The one way a private answer to a request reaches the person: its ``response_url``, retried, and
the person's own channel or DM when that fails.

Bolt's ``respond()`` posts once and hands back whatever Slack said, so a 500 or a 429 from the
response_url was an answer nobody saw. Here the post goes through slack_sdk's ``WebhookClient`` with
the library's retry handlers (429, 5xx and connection errors, a few times, each wait capped at
``MAX_WAIT`` seconds: an answer is only useful soon). When it still fails, or the URL is spent (Slack
answers 404 ``expired_url`` / ``used_url``: a response_url takes 5 answers in 30 minutes), the same
person is told with ``chat.postEphemeral`` in the channel the request came from, and failing that
with a DM through the outbox (``Publisher.notice``, which keeps retrying). One log line says so; the
URL is a capability to post as the app and never reaches the log, nor does the message.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.deps import Deps
from bot.publish import Publisher

log = logging.getLogger(__name__)

# The webhook client logs the URL (and at DEBUG the body) on its own: it gets a logger that says nothing.
_SILENT = logging.getLogger(f"{__name__}.webhook")
_SILENT.setLevel(logging.CRITICAL + 1)
_SILENT.propagate = False

RETRIES = 2  # after the first post: three posts at most, whatever Slack answers
MAX_WAIT = 3.0  # seconds, per wait; Retry-After beyond it is cut to it
TIMEOUT = 5  # seconds per post: three posts and two waits hold a thread about 21 s at worst
# How the retry handlers wait; tests replace it to record the waits instead of sleeping them.
SLEEP: Callable[[float], None] = time.sleep


class _Capped(RetryHandler):
    """The library's backoff step with the wait capped and slept through ``SLEEP``."""

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        self._wait(state, self.interval_calculator.calculate_sleep_duration(state.current_attempt))

    @staticmethod
    def _wait(state: RetryState, seconds: float) -> None:
        """One more attempt, after ``seconds`` capped at MAX_WAIT."""
        state.next_attempt_requested = True
        SLEEP(min(seconds, MAX_WAIT))
        state.increment_current_attempt()


class _RateLimited(_Capped, RateLimitErrorRetryHandler):
    """A 429 waits its Retry-After, capped; a header that is absent or not a number of seconds (the
    library's own handler raises on one) waits the normal backoff instead."""

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        seconds = retry_after(response.headers if response is not None else {})
        if seconds is None:
            super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)
            return
        self._wait(state, seconds)


class _ServerError(_Capped, ServerErrorRetryHandler):
    """Every 5xx, not only the library's 500 and 503 (a proxy in front of Slack answers 502 and 504)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


class _ConnectionError(_Capped, ConnectionErrorRetryHandler):
    pass


def retry_after(headers: dict[str, Any]) -> float | None:
    """Retry-After in seconds, or None when it is absent or not a number of seconds (a date, "soon")."""
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                seconds = float(raw)
            except (TypeError, ValueError):
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def retry_handlers() -> list[RetryHandler]:
    return [
        _RateLimited(max_retry_count=RETRIES),
        _ServerError(max_retry_count=RETRIES),
        _ConnectionError(max_retry_count=RETRIES),
    ]


def _failure(resp: WebhookResponse) -> str | None:
    """Why Slack did not take the answer, or None when it did: a status, and Slack's error word."""
    word = (resp.body or "").strip()
    try:
        parsed = json.loads(word)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if resp.status_code == 200 and parsed.get("ok") is not False:
            return None
        word = str(parsed.get("error") or "")
    elif resp.status_code == 200:
        return None
    # only a short token of Slack's goes to the log, never a page a proxy sent
    word = word if word.replace("_", "").isalnum() and len(word) <= 40 else ""
    return f"{resp.status_code} {word}".strip()


def post(url: str, message: dict[str, Any]) -> str | None:
    """Posts ``message`` to ``url``, retrying; None when Slack took it, else why not (for the log)."""
    client = WebhookClient(url=url, timeout=TIMEOUT, logger=_SILENT, retry_handlers=retry_handlers())
    try:
        return _failure(client.send_dict(message))
    except Exception as exc:  # the connection kept failing, or the URL is not one (no detail: it names it)
        return type(exc).__name__


def _slack_error(exc: Exception) -> str:
    try:
        return str(exc.response["error"])  # type: ignore[attr-defined]
    except Exception:
        return type(exc).__name__


def answer(
    deps: Deps,
    client: WebClient,
    *,
    url: str | None,
    user_id: str | None,
    channel_id: str | None,
    message: dict[str, Any],
) -> str:
    """Tells ``user_id`` ``message`` (``bot.listeners.common.ephemeral``'s keyword arguments) privately:
    through ``url`` when there is one, else or when it fails in ``channel_id``, else in a DM. Call it
    after the ack. Never raises; returns how it went: "response_url", "ephemeral", "dm" or "lost"."""
    why = "no response_url"
    if url:
        failed = post(url, message)
        if failed is None:
            return "response_url"
        why = failed
    how = "lost"
    text = str(message.get("text") or "")
    if user_id and channel_id:
        try:
            client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=text, blocks=message.get("blocks")
            )
            how = "ephemeral"
        except Exception as exc:  # not in the channel, or Slack is down too: the DM still goes
            why = f"{why}; chat.postEphemeral {_slack_error(exc)}"
    if how == "lost" and user_id:
        try:
            Publisher(client, deps).answer_dm(user_id, message)
            how = "dm"
        except Exception as exc:
            why = f"{why}; DM {type(exc).__name__}"
    if url or how == "lost":
        log.warning("private answer to %s not taken by its response_url (%s): sent as %s", user_id, why, how)
    return how


def answer_request(
    deps: Deps, client: WebClient, respond: Respond | None, body: dict[str, Any], message: dict[str, Any]
) -> str:
    """``answer`` for a listener: to the user who sent ``body``, through Bolt's ``respond``'s URL,
    falling back in the channel the request came from."""
    url = respond.response_url if respond is not None else None
    return answer(deps, client, url=url, user_id=user_of(body), channel_id=channel_of(body), message=message)


def user_of(body: dict[str, Any]) -> str | None:
    """Who sent a request: a click's or a submission's user, a command's user_id, an event's user."""
    user = body.get("user")
    if isinstance(user, dict):
        return user.get("id")
    return body.get("user_id") or (body.get("event") or {}).get("user")


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel a request came from: a slash command's, a clicked message's; None for a modal."""
    channel = body.get("channel")
    if isinstance(channel, dict) and isinstance(channel.get("id"), str):
        return channel["id"]
    if isinstance(body.get("channel_id"), str):
        return body["channel_id"]
    container = body.get("container")
    if isinstance(container, dict) and isinstance(container.get("channel_id"), str):
        return container["channel_id"]
    return None
