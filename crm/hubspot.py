"""HubSpot over its date-versioned API (``/crm/objects/2026-03/...``; ``/crm/v3`` loses support in
September 2027), with httpx: the official Python SDK wraps the v3 paths, and Baton needs a handful of
calls. Won deals come from the search API (sorted by ``hs_lastmodifieddate`` from a watermark), their
company, contacts (with association labels as roles), line items and activities from associations v4
and batch reads; accounts from companies. 429s are waited out as the answer's headers say."""

from __future__ import annotations

import contextlib
import html
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from crm.http import CrmAuthError, CrmError, CrmRefused, error_text, request_json, retry_after
from crm.model import Activity, DealContact, LineItem, WonDeal, day_of, decimal_of, term_end
from settings import HubSpotRules

NAME = "hubspot"
SEARCH_PAGE = 200  # the search API's largest page
SEARCH_CAP = 10_000  # the search API pages no further than this many results (a 400 past it)
BATCH = 100  # batch reads and association reads take at most 100 inputs
DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "closedate",
    "dealstage",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
)
LINE_ITEM_PROPERTIES = (
    "name",
    "quantity",
    "price",
    "amount",
    "recurringbillingfrequency",
    "hs_recurring_billing_period",
)
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "jobtitle")
ACTIVITY_TYPES = {  # object type -> (kind, title property, body property)
    "notes": ("note", None, "hs_note_body"),
    "meetings": ("meeting", "hs_meeting_title", "hs_meeting_body"),
    "calls": ("call", "hs_call_title", "hs_call_body"),
}
_PERIODS = {"monthly": "monthly", "annually": "annual"}
_TAG = re.compile(r"<[^>]+>")
# tags that break a line (a space between words); any other tag (<b>, <a>) joins its text as it stands,
# which in Japanese, written without spaces, must not gain one
_BREAK = re.compile(r"<\s*/?\s*(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote)\b[^>]*>", re.I)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")  # kana and kanji


def rate_wait(resp: httpx.Response) -> float | None:
    """How long a 429 asks to wait: ``Retry-After`` when given, else the rolling window the
    ``X-HubSpot-RateLimit-*`` headers name (190 per 10 s on Pro), else the search API's second.
    A daily limit is not waited for."""
    if resp.status_code != 429:
        return None
    after = retry_after(resp)
    if after is not None:
        return after
    policy = ""
    with contextlib.suppress(ValueError, AttributeError):
        policy = str((resp.json() or {}).get("policyName", ""))
    if "DAILY" in policy.upper():
        return float("inf")
    interval = resp.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    if resp.headers.get("X-HubSpot-RateLimit-Remaining") == "0" and interval.isdigit():
        return int(interval) / 1000
    return 1.0


def _ms(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def _text(raw: str | None) -> str:
    """HubSpot note bodies are HTML: the words, for people."""
    return " ".join(html.unescape(_TAG.sub("", _BREAK.sub(" ", raw or ""))).split())


def _months(period: str | None) -> int | None:
    """``P12M`` / ``P1Y`` (hs_recurring_billing_period) as months."""
    m = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?", (period or "").strip().upper())
    if not m or not any(m.groups()):
        return None
    return int(m.group(1) or 0) * 12 + int(m.group(2) or 0) or None


class HubSpot:
    """One HubSpot account. ``refresh`` (an OAuth app's token renewal) is tried once on a 401; a
    private-app token has none, and a 401 then says to make a new token."""

    name = NAME

    def __init__(
        self,
        base_url: str,
        token: str,
        rules: HubSpotRules,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        refresh: Callable[[], str] | None = None,
        timezone: str | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.timezone = timezone  # the team's: a close date that is an instant is read as its day
        self.token, self.rules, self.sleep, self.refresh = token, rules, sleep, refresh
        self.client = client or httpx.Client(timeout=30)
        self.v = rules.api_version
        self.calls = 0
        self._owners: dict[str, str | None] = {}

    def close(self) -> None:
        self.client.close()

    # --- the wire -------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        refreshed = False
        while True:
            self.calls += 1
            resp = request_json(
                self.client,
                method,
                self.base + path,
                name="HubSpot",
                headers={"Authorization": f"Bearer {self.token}"},
                sleep=self.sleep,
                rate_wait=rate_wait,
                json=json,
                params=params,
            )
            if resp.status_code == 401 and self.refresh is not None and not refreshed:
                self.token, refreshed = self.refresh(), True
                continue
            if resp.status_code == 401:
                raise CrmAuthError(
                    f"HubSpot refused HUBSPOT_ACCESS_TOKEN ({error_text(resp)}): it has expired or was "
                    "revoked; create a new private-app token (Settings > Integrations > Private apps)"
                )
            if resp.status_code == 403:
                raise CrmAuthError(
                    f"HubSpot refused {method} {path} ({error_text(resp)}): give the private app the scopes "
                    "the README lists"
                )
            if resp.status_code == 404:
                return None
            if resp.status_code >= 400:
                raise CrmRefused(
                    f"HubSpot answered {resp.status_code} to {method} {path}: {error_text(resp)}",
                    resp.status_code,
                )
            try:
                return resp.json() if resp.content else {}
            except ValueError as exc:
                raise CrmError(f"HubSpot did not answer JSON to {method} {path}") from exc

    def search(
        self, object_type: str, body: dict[str, Any], *, cap: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every result of a search, page by page (``paging.next.after``), stopping at ``cap``."""
        after: str | None = None
        seen = 0
        while True:
            page = self.call(
                "POST",
                f"/crm/objects/{self.v}/{object_type}/search",
                json={**body, "limit": SEARCH_PAGE, **({"after": after} if after else {})},
            )
            for r in (page or {}).get("results") or ():
                yield r
                seen += 1
                if cap is not None and seen >= cap:
                    return
            after = (((page or {}).get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def search_all(self, object_type: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result, past the search API's 10,000: sorted by id, each search starts after the last
        id the one before saw (keyset paging), so a portal with 40,000 customers syncs whole."""
        last: str | None = None
        while True:
            groups = body.get("filterGroups") or [{"filters": []}]
            if last is not None:
                after = {"propertyName": "hs_object_id", "operator": "GT", "value": last}
                groups = [{"filters": [*g["filters"], after]} for g in groups]
            keyed = {**body, "filterGroups": groups,
                     "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]}  # fmt: skip
            n = 0
            for r in self.search(object_type, keyed, cap=SEARCH_CAP):
                yield r
                last, n = str(r["id"]), n + 1
            if n < SEARCH_CAP:
                return

    def batch_read(
        self, object_type: str, ids: list[str], properties: tuple[str, ...]
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), BATCH):
            page = self.call(
                "POST",
                f"/crm/objects/{self.v}/{object_type}/batch/read",
                json={"properties": list(properties), "inputs": [{"id": x} for x in ids[i : i + BATCH]]},
            )
            for r in (page or {}).get("results") or ():
                out[str(r["id"])] = r.get("properties") or {}
        return out

    def associations(
        self, from_type: str, to_type: str, ids: list[str]
    ) -> dict[str, list[tuple[str, list[str]]]]:
        """``{from id: [(to id, labels)]}`` from associations v4, following each id's own paging."""
        out: dict[str, list[tuple[str, list[str]]]] = {x: [] for x in ids}
        todo: list[dict[str, str]] = [{"id": x} for x in ids]
        while todo:
            batch, todo = todo[:BATCH], todo[BATCH:]
            page = self.call(
                "POST", f"/crm/associations/{self.v}/{from_type}/{to_type}/batch/read", json={"inputs": batch}
            )
            for r in (page or {}).get("results") or ():
                src = str(r["from"]["id"])
                for to in r.get("to") or ():
                    labels = [t["label"] for t in to.get("associationTypes") or () if t.get("label")]
                    out.setdefault(src, []).append((str(to["toObjectId"]), labels))
                after = ((r.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    todo.append({"id": src, "after": after})
        return out

    def owner_email(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        if owner_id not in self._owners:
            owner = self.call("GET", f"/crm/owners/{self.v}/{owner_id}")
            self._owners[owner_id] = (owner or {}).get("email") or None
        return self._owners[owner_id]

    # --- what Baton reads -----------------------------------------------------------------------
    def won_deals(self, since: datetime) -> Iterator[tuple[WonDeal, datetime]]:
        """Deals in a won stage modified at or after ``since``, oldest change first, with that change's
        time (the next watermark). A deal modified again after it was won comes again: the caller keeps
        the ids it has."""
        props = (*DEAL_PROPERTIES, *((self.rules.renewal_property,) if self.rules.renewal_property else ()))
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "dealstage",
                            "operator": "IN",
                            "values": list(self.rules.won_stages),
                        },
                        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": _ms(since)},
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(props),
        }
        page: list[dict[str, Any]] = []
        for raw in self.search("deals", body):
            page.append(raw)
            if len(page) == BATCH:
                yield from self._complete(page)
                page = []
        if page:
            yield from self._complete(page)

    def deals(self, ids: list[str]) -> Iterator[tuple[WonDeal, datetime]]:
        """The named deals that are won (a webhook says which deals changed)."""
        props = (*DEAL_PROPERTIES, *((self.rules.renewal_property,) if self.rules.renewal_property else ()))
        found = self.batch_read("deals", ids, props)
        won = [
            {"id": k, "properties": v}
            for k, v in found.items()
            if v.get("dealstage") in self.rules.won_stages
        ]
        yield from self._complete(won)

    def _complete(self, raws: list[dict[str, Any]]) -> Iterator[tuple[WonDeal, datetime]]:
        ids = [str(r["id"]) for r in raws]
        links = {
            t: self.associations("deals", t, ids)
            for t in ("companies", "contacts", "line_items", *ACTIVITY_TYPES)
        }
        wanted = lambda t: sorted({to for pairs in links[t].values() for to, _ in pairs})  # noqa: E731
        companies = self.batch_read("companies", wanted("companies"), ("name",))
        contacts = self.batch_read("contacts", wanted("contacts"), CONTACT_PROPERTIES)
        items = self.batch_read("line_items", wanted("line_items"), LINE_ITEM_PROPERTIES)
        acts = {
            t: self.batch_read(t, wanted(t), tuple(p for p in (title, body, "hs_timestamp") if p))
            for t, (_, title, body) in ACTIVITY_TYPES.items()
        }
        for raw in raws:
            deal_id, p = str(raw["id"]), raw.get("properties") or {}
            company = next(iter(links["companies"].get(deal_id) or ()), None)
            line_items = tuple(
                _line_item(items[i]) for i, _ in links["line_items"].get(deal_id) or () if i in items
            )
            people = tuple(
                _contact(contacts[c], labels)
                for c, labels in links["contacts"].get(deal_id) or ()
                if c in contacts
            )
            activities: list[Activity] = []
            for t, (kind, title, body) in ACTIVITY_TYPES.items():
                for a, _ in links[t].get(deal_id) or ():
                    ap = acts[t].get(a)
                    if ap is None:
                        continue
                    words = " — ".join(
                        x for x in (_text(ap.get(title)) if title else "", _text(ap.get(body))) if x
                    )
                    activities.append(Activity(kind, day_of(ap.get("hs_timestamp"), self.timezone), words))
            activities.sort(key=lambda a: a.when.isoformat() if a.when else "", reverse=True)
            close = day_of(p.get("closedate"), self.timezone)
            explicit = day_of(p.get(self.rules.renewal_property)) if self.rules.renewal_property else None
            modified = _modified(p.get("hs_lastmodifieddate"))
            yield (
                WonDeal(
                    crm=NAME,
                    deal_id=deal_id,
                    name=str(p.get("dealname") or ""),
                    account_name=(companies.get(company[0]) or {}).get("name") if company else None,
                    company_id=company[0] if company else None,
                    amount=decimal_of(p.get("amount")),
                    currency=(p.get("deal_currency_code") or None),
                    close_date=close,
                    renewal_date=term_end(close, explicit, line_items, self.rules.term_months),
                    owner_email=self.owner_email(p.get("hubspot_owner_id")),
                    line_items=line_items,
                    contacts=people,
                    activities=tuple(activities),
                ),
                modified,
            )

    def account_rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(company id, properties) for the accounts sync: the companies ``account_filter`` selects
        (customers, by default), with the properties ``account_fields`` names."""
        props = sorted(set(self.rules.account_fields.values()) | {"hs_object_id"})
        filters = [
            {"propertyName": k, "operator": "EQ", "value": v} for k, v in self.rules.account_filter.items()
        ]
        body: dict[str, Any] = {
            "properties": props,
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            **({"filterGroups": [{"filters": filters}]} if filters else {}),
        }
        for r in self.search_all("companies", body):
            yield str(r["id"]), {**(r.get("properties") or {}), "hs_object_id": str(r["id"])}


def _modified(raw: Any) -> datetime:
    """``hs_lastmodifieddate``; a deal without one (never seen, but not trusted) moves no watermark."""
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def _line_item(p: dict[str, Any]) -> LineItem:
    return LineItem(
        name=str(p.get("name") or ""),
        quantity=decimal_of(p.get("quantity")),
        unit_price=decimal_of(p.get("price")),
        amount=decimal_of(p.get("amount")),
        billing_period=_PERIODS.get(str(p.get("recurringbillingfrequency") or "").lower()),
        term_months=_months(p.get("hs_recurring_billing_period")),
    )


def _contact(p: dict[str, Any], labels: list[str]) -> DealContact:
    first, last = p.get("firstname"), p.get("lastname")
    order = (last, first) if _CJK.search(f"{first or ''}{last or ''}") else (first, last)  # 小林 陽翔
    name = " ".join(x for x in order if x) or str(p.get("email") or "")
    return DealContact(
        name=name,
        email=p.get("email") or None,
        role=", ".join(labels) or p.get("jobtitle") or None,
        primary=any("primary" in label.lower() for label in labels),
    )
