"""The scheduled pull: usage signals from a product-analytics HTTP JSON export, page by page.

Pages stream through the same ingest code as files and the API, inside one transaction: a bad
record anywhere refuses the whole pull. Transient failures (5xx, 429, network) are retried with
exponential backoff; the sleep is injected, so tests never wait."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
from sqlalchemy.orm import Session

from ingest import Result, ingest_signals
from settings import PullRules

log = logging.getLogger(__name__)
RETRIES = 4


class PullError(Exception):
    pass


def _dig(data: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _headers(rules: PullRules) -> dict[str, str]:
    if not rules.auth_header:
        return {}
    name, _, value = os.path.expandvars(rules.auth_header).partition(":")
    return {name.strip(): value.strip()}


class _Transient(Exception):
    """Worth another try: 429 (after its Retry-After, when given), 5xx."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def _get(client: httpx.Client, url: str, headers: dict[str, str], sleep: Callable[[float], None]) -> Any:
    for attempt in range(RETRIES + 1):
        try:
            resp = client.get(url, headers=headers)
            if resp.status_code == 429 or resp.status_code >= 500:
                after = resp.headers.get("Retry-After", "")
                raise _Transient(
                    f"{url} answered {resp.status_code}", float(after) if after.isdigit() else None
                )
            if resp.status_code >= 400:
                raise PullError(f"{url} answered {resp.status_code}: {resp.text[:200]}")
            try:
                return resp.json()
            except ValueError as exc:
                raise PullError(f"{url} did not answer JSON") from exc
        except (httpx.TransportError, _Transient) as exc:
            if attempt == RETRIES:
                raise PullError(f"{exc} (after {RETRIES + 1} tries)") from exc
            wait = getattr(exc, "wait", None) or 2**attempt
            log.warning("pull: %s; retrying in %ss", exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def records_from(
    rules: PullRules, client: httpx.Client, sleep: Callable[[float], None] = time.sleep
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    url: str | None = rules.url
    headers, n, pages = _headers(rules), 0, 0
    f = rules.fields
    while url:
        pages += 1
        if pages > rules.max_pages:
            raise PullError(f"more than {rules.max_pages} pages: check next_path ({rules.next_path!r})")
        page = _get(client, url, headers, sleep)
        items = _dig(page, rules.items_path) if rules.items_path else page
        if not isinstance(items, list):
            raise PullError(f"{url}: no list at {rules.items_path!r}")
        for item in items:
            n += 1
            if not isinstance(item, dict):
                yield n, None, "expected a JSON object"
                continue
            yield n, {k: _dig(item, f.get(k, k)) for k in ("account_id", "date", "metric", "value")}, None
        nxt = _dig(page, rules.next_path) if rules.next_path else None
        url = str(httpx.URL(url).join(nxt)) if nxt else None


def pull(
    session: Session,
    rules: PullRules,
    *,
    today: date,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """Pull every page into ``session``: the caller owns the unit of work (the job's, with its ledger row,
    so on SQLite there is one writer, not a second session waiting on the ledger's lock). ``today`` is the
    team's day: a source sending a far-future date is refused, not made the book's latest day."""
    if not rules.url:
        raise PullError("no pull.url configured")
    own = client is None
    client = client or httpx.Client(timeout=30)
    try:
        return ingest_signals(session, records_from(rules, client, sleep), today=today)
    finally:
        if own:
            client.close()
