"""Salesforce over its REST API with httpx. simple-salesforce is not in Baton's locked environment and
its login helpers predate the client-credentials flow External Client Apps use; Baton needs a token
and SOQL queries with ``nextRecordsUrl`` paging, a few dozen lines.

The token comes from ``SALESFORCE_LOGIN_URL/services/oauth2/token`` (client credentials; the answer
names the org's ``instance_url``); an expired one (401) is renewed once. Won opportunities are polled
on ``SystemModstamp`` (it also moves when a related record or the system changes the row, unlike
``LastModifiedDate``); ``REQUEST_LIMIT_EXCEEDED`` stops the pass with the ``Sforce-Limit-Info``
figures, since the daily API budget will not come back by waiting seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from crm.http import CrmAuthError, CrmError, CrmRefused, RateLimited, error_text, request_json, retry_after
from crm.model import Activity, DealContact, LineItem, WonDeal, day_of, decimal_of, term_end
from settings import SalesforceRules

NAME = "salesforce"
MAX_PAGES = 10_000


def rate_wait(resp: httpx.Response) -> float | None:
    """A 429 or 503 with ``Retry-After`` (Salesforce's edge sends them under load); the daily budget
    (``REQUEST_LIMIT_EXCEEDED``) is handled by the caller, not waited for."""
    if resp.status_code in (429, 503):
        return retry_after(resp) or 1.0
    return None


def _dig(rec: dict[str, Any] | None, path: str) -> Any:
    for part in path.split("."):
        rec = rec.get(part) if isinstance(rec, dict) else None
    return rec


def soql_time(when: datetime) -> str:
    """A SOQL dateTime literal (UTC, whole seconds: ``>=`` with the stored ids makes that safe)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _records(sub: Any) -> list[dict[str, Any]]:
    return list((sub or {}).get("records") or ()) if isinstance(sub, dict) else []


class Salesforce:
    name = NAME

    def __init__(
        self,
        login_url: str,
        client_id: str,
        client_secret: str,
        rules: SalesforceRules,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self.client_id, self.client_secret, self.rules, self.sleep = client_id, client_secret, rules, sleep
        self.client = client or httpx.Client(timeout=30)
        self.token: str | None = None
        self.instance_url = ""
        self.limit_info: str | None = None  # the last Sforce-Limit-Info, e.g. api-usage=25/15000
        self.calls = 0
        self.logins = 0

    def close(self) -> None:
        self.client.close()

    # --- the wire -------------------------------------------------------------------------------
    def login(self) -> None:
        self.logins += 1
        resp = self._token_request()
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not body.get("access_token"):
            why = body.get("error_description") or body.get("error") or f"HTTP {resp.status_code}"
            raise CrmAuthError(
                f"Salesforce refused the client credentials at {self.login_url} ({why}): check "
                "SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET, that the External Client App enables the "
                "client credentials flow with a run-as user, and SALESFORCE_LOGIN_URL (your My Domain)"
            )
        self.token, self.instance_url = (
            body["access_token"],
            str(body.get("instance_url") or self.login_url).rstrip("/"),
        )

    def _token_request(self) -> httpx.Response:
        for attempt in range(3):
            try:
                return self.client.post(
                    f"{self.login_url}/services/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                    },
                )
            except httpx.TransportError as exc:
                if attempt == 2:
                    raise CrmError(
                        f"Salesforce login at {self.login_url} did not answer ({type(exc).__name__})"
                    ) from exc
                self.sleep(2**attempt)
        raise AssertionError("unreachable")

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET ``path`` on the instance; a 401 (expired session) logs in again, once."""
        return self.call("GET", path, params=params) or {}

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """One REST call on the instance (a 204 answers None); a 401 logs in again, once."""
        if self.token is None:
            self.login()
        for renewed in (False, True):
            self.calls += 1
            resp = request_json(
                self.client,
                method,
                self.instance_url + path,
                name="Salesforce",
                headers={"Authorization": f"Bearer {self.token}"},
                sleep=self.sleep,
                rate_wait=rate_wait,
                params=params,
                json=json,
            )
            self.limit_info = resp.headers.get("Sforce-Limit-Info", self.limit_info)
            if resp.status_code == 401 and not renewed:
                self.login()
                continue
            if resp.status_code == 401:
                raise CrmAuthError(
                    f"Salesforce refused a fresh token ({error_text(resp)}): check the run-as user's access"
                )
            if resp.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in resp.text:
                usage = self.limit_info or "no Sforce-Limit-Info"
                raise RateLimited(
                    f"Salesforce's API request limit is used up ({usage}): "
                    "the pass stops and the next one resumes from the same watermark"
                )
            if resp.status_code >= 400:
                raise CrmRefused(
                    f"Salesforce answered {resp.status_code}: {error_text(resp)}", resp.status_code
                )
            if not resp.content:
                return None
            try:
                return resp.json()
            except ValueError as exc:
                raise CrmError("Salesforce did not answer JSON") from exc
        raise AssertionError("unreachable")

    def query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every record of a SOQL query, following ``nextRecordsUrl`` (2,000 rows a page)."""
        page = self.get(f"/services/data/{self.rules.api_version}/query", {"q": soql})
        for _ in range(MAX_PAGES):
            yield from page.get("records") or ()
            nxt = page.get("nextRecordsUrl")
            if page.get("done", True) or not nxt:
                return
            page = self.get(str(nxt))
        raise CrmError(f"more than {MAX_PAGES} pages from one Salesforce query")

    # --- what Baton reads -----------------------------------------------------------------------
    def won_deals(self, since: datetime) -> Iterator[tuple[WonDeal, datetime]]:
        r = self.rules
        extra = [f for f in (r.renewal_field, r.currency_field) if f]
        soql = (
            "SELECT Id, Name, Amount, CloseDate, SystemModstamp, AccountId, Account.Name, Owner.Email"
            + "".join(f", {f}" for f in extra)
            + ", (SELECT Role, IsPrimary, Contact.Name, Contact.Email FROM OpportunityContactRoles)"
            + ", (SELECT Name, Quantity, UnitPrice, TotalPrice, Product2.Name FROM OpportunityLineItems)"
            + ", (SELECT Subject, ActivityDate, Description, ActivityType FROM ActivityHistories"
            + " ORDER BY ActivityDate DESC LIMIT 5)"
            + f" FROM Opportunity WHERE ({r.won_where}) AND SystemModstamp >= {soql_time(since)}"
            + " ORDER BY SystemModstamp ASC, Id ASC"
        )
        for rec in self.query(soql):
            yield self._deal(rec), _stamp(rec.get("SystemModstamp"))

    def _deal(self, rec: dict[str, Any]) -> WonDeal:
        r = self.rules
        items = tuple(
            LineItem(
                name=str(_dig(li, "Product2.Name") or li.get("Name") or ""),
                quantity=decimal_of(li.get("Quantity")),
                unit_price=decimal_of(li.get("UnitPrice")),
                amount=decimal_of(li.get("TotalPrice")),
            )
            for li in _records(rec.get("OpportunityLineItems"))
        )
        close = day_of(rec.get("CloseDate"))
        explicit = day_of(_dig(rec, r.renewal_field)) if r.renewal_field else None
        return WonDeal(
            crm=NAME,
            deal_id=str(rec["Id"]),
            name=str(rec.get("Name") or ""),
            account_name=_dig(rec, "Account.Name"),
            company_id=rec.get("AccountId"),
            amount=decimal_of(rec.get("Amount")),
            currency=(_dig(rec, r.currency_field) if r.currency_field else None) or r.currency,
            close_date=close,
            renewal_date=term_end(close, explicit, items, r.term_months),
            owner_email=_dig(rec, "Owner.Email"),
            line_items=items,
            contacts=tuple(
                DealContact(
                    name=str(_dig(c, "Contact.Name") or _dig(c, "Contact.Email") or ""),
                    email=_dig(c, "Contact.Email"),
                    role=c.get("Role") or None,
                    primary=bool(c.get("IsPrimary")),
                )
                for c in _records(rec.get("OpportunityContactRoles"))
            ),
            activities=tuple(
                Activity(
                    kind=str(a.get("ActivityType") or "task").lower(),
                    when=day_of(a.get("ActivityDate")),
                    text=" — ".join(x for x in (a.get("Subject"), a.get("Description")) if x),
                )
                for a in _records(rec.get("ActivityHistories"))
            ),
            url=f"{self.instance_url}/{rec['Id']}" if self.instance_url else None,
        )

    def account_rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(Account id, record) for the accounts sync: the Accounts ``account_where`` selects, with the
        fields ``account_fields`` names (dotted paths read related records)."""
        fields = sorted(set(self.rules.account_fields.values()) | {"Id"})
        where = f" WHERE {self.rules.account_where}" if self.rules.account_where else ""
        for rec in self.query(f"SELECT {', '.join(fields)} FROM Account{where} ORDER BY Id"):
            yield str(rec["Id"]), rec


def _stamp(raw: Any) -> datetime:
    """``2026-11-30T10:00:00.000+0000`` as an aware datetime."""
    text = str(raw)
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


field_of = _dig
