"""The HTTP conversation both CRMs share: JSON calls retried on rate limits and outages, with the
wait each API asks for. The sleep is injected, so tests of a 429 storm never wait."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger(__name__)
RETRIES = 5
MAX_WAIT = 120.0  # seconds: a longer Retry-After is a daily limit, better reported than slept through


class CrmError(Exception):
    """A CRM call failed in a way a retry will not fix now; the message says what to do."""


class CrmAuthError(CrmError):
    """The CRM refused the credentials."""


class CrmRefused(CrmError):
    """The CRM answered a 4xx that is not about credentials or limits; ``status`` says which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(CrmError):
    """Still rate limited after every retry (or asked to wait longer than MAX_WAIT)."""


Wait = Callable[[httpx.Response], float | None]  # how long a 429 asks to wait; None: not a rate limit


def retry_after(resp: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when it is a number (an HTTP date or junk: None)."""
    raw = resp.headers.get("Retry-After", "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    name: str,
    headers: dict[str, str],
    sleep: Callable[[float], None],
    rate_wait: Wait,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    """One call, retried on 5xx, network errors and rate limits (``rate_wait`` reads the API's own
    answer). Returns the final response, whatever its status: the caller knows what a 401 means."""
    for attempt in range(RETRIES + 1):
        try:
            resp = client.request(method, url, headers=headers, json=json, params=params)
        except httpx.TransportError as exc:
            if attempt == RETRIES:
                raise CrmError(
                    f"{name} did not answer ({type(exc).__name__}) after {attempt + 1} tries"
                ) from exc
            _nap(sleep, 2**attempt, f"{name}: {type(exc).__name__}")
            continue
        wait = rate_wait(resp)
        if wait is not None:
            if wait > MAX_WAIT:
                raise RateLimited(
                    f"{name} is rate limited for {wait:.0f} s ({_reason(resp)}); try again later"
                )
            if attempt == RETRIES:
                raise RateLimited(f"{name} still rate limited after {attempt + 1} tries ({_reason(resp)})")
            _nap(sleep, wait, f"{name}: rate limited ({_reason(resp)})")
            continue
        if resp.status_code >= 500:
            if attempt == RETRIES:
                raise CrmError(f"{name} answered {resp.status_code} after {attempt + 1} tries")
            _nap(sleep, 2**attempt, f"{name}: {resp.status_code}")
            continue
        return resp
    raise AssertionError("unreachable")


def _nap(sleep: Callable[[float], None], seconds: float, why: str) -> None:
    log.warning("%s; retrying in %.1f s", why, seconds)
    sleep(seconds)


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(body, list) and body and isinstance(body[0], dict):  # Salesforce: a list of errors
        body = body[0]
    if isinstance(body, dict):
        for key in ("policyName", "errorCode", "message"):
            if body.get(key):
                return str(body[key])[:200]
    return f"HTTP {resp.status_code}"


def error_text(resp: httpx.Response) -> str:
    """What the CRM said about a refused call, short."""
    return _reason(resp) if resp.content else f"HTTP {resp.status_code}"
