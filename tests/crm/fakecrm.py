"""Fake HubSpot and Salesforce APIs on loopback, answering in the documented shapes: HubSpot's
date-versioned search (``paging.next.after``), batch reads, associations v4 with labels and per-id
paging, owners, 429s with ``Retry-After`` / ``X-HubSpot-RateLimit-*`` headers and a policy name, 401
for a token it does not know; Salesforce's client-credentials token endpoint (``instance_url``), SOQL
query pages with ``nextRecordsUrl``, ``INVALID_SESSION_ID`` for an expired session,
``REQUEST_LIMIT_EXCEEDED`` and ``Sforce-Limit-Info``. Every request is recorded."""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

V = "2026-03"


@dataclass
class Seen:
    method: str
    path: str
    body: Any
    auth: str | None


class _Server:
    """A ThreadingHTTPServer whose handler calls ``self.handle(method, path, query, body, headers)``."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _do(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                status, headers, body = owner.answer(method, url.path, parse_qs(url.query), raw, self.headers)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

            def do_PATCH(self) -> None:
                self._do("PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> _Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: Any) -> Any:
        raise NotImplementedError

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


class FakeHubSpot(_Server):
    def __init__(self) -> None:
        super().__init__()
        self.token = "pat-test"
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}  # type -> id -> properties
        self.links: dict[tuple[str, str], dict[str, list[tuple[str, list[str]]]]] = {}
        self.owners: dict[str, str] = {}  # owner id -> email
        self.page_size = 200  # the search's largest page; tests shrink it to see paging
        self.search_cap = 10_000  # HubSpot refuses to page a search past this many results
        self.assoc_page_size = 500
        # answers to give before the real one, per path prefix: (status, headers, body)
        self.throttle: list[tuple[str, int, dict[str, str], Any]] = []
        # (method, path prefix, status): do the write, then answer this status (a lost answer)
        self.lose: list[tuple[str, str, int]] = []
        self._ids = itertools.count(1000)

    # --- building the account -------------------------------------------------------------------
    def add(self, object_type: str, props: dict[str, Any], object_id: str | None = None) -> str:
        oid = object_id or str(next(self._ids))
        self.objects.setdefault(object_type, {})[oid] = {**props, "hs_object_id": oid}
        return oid

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str, *labels: str) -> None:
        self.links.setdefault((from_type, to_type), {}).setdefault(from_id, []).append((to_id, list(labels)))

    def rate_limit(self, prefix: str = "/", *, times: int = 1, headers: dict[str, str] | None = None,
                   policy: str = "TEN_SECONDLY_ROLLING") -> None:  # fmt: skip
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c0ffee",
            "policyName": policy,
        }
        for _ in range(times):
            self.throttle.append((prefix, 429, dict(headers or {}), body))

    # --- the API --------------------------------------------------------------------------------
    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: Any) -> Any:
        body = json.loads(raw) if raw else None
        auth = headers.get("Authorization")
        with self.lock:
            self.requests.append(Seen(method, path, body, auth))
            for i, (prefix, status, hdrs, answer) in enumerate(self.throttle):
                if path.startswith(prefix):
                    del self.throttle[i]
                    return status, hdrs, answer
        if auth != f"Bearer {self.token}":
            return (
                401,
                {},
                {
                    "status": "error",
                    "message": "The OAuth token used to make this call expired 2 minutes ago.",
                    "category": "EXPIRED_AUTHENTICATION",
                },
            )
        limits = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "189",
                  "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}  # fmt: skip
        if method in ("POST", "PATCH") and (write := self._write(method, path, body)) is not None:
            with self.lock:
                for i, (m, prefix, status) in enumerate(self.lose):
                    if m == method and path.startswith(prefix):
                        del self.lose[i]
                        return status, {}, {"status": "error", "message": "internal error"}
            return write
        if path == f"/crm/owners/{V}":
            email = (query.get("email") or [""])[0]
            found = [{"id": k, "email": v, "type": "PERSON"} for k, v in self.owners.items() if v == email]
            return 200, limits, {"results": found}
        if m := re.fullmatch(rf"/crm/objects/{V}/(\w+)/search", path):
            if int(body.get("after") or 0) >= self.search_cap:  # as HubSpot answers paging past it
                return 400, limits, {"status": "error", "category": "VALIDATION_ERROR",
                                     "message": "There was a problem with the request."}  # fmt: skip
            return 200, limits, self._search(m.group(1), body)
        if m := re.fullmatch(rf"/crm/objects/{V}/(\w+)/batch/read", path):
            store = self.objects.get(m.group(1), {})
            wanted = body.get("properties") or []
            results = [
                {"id": i["id"], "properties": {p: store[i["id"]].get(p) for p in wanted}, "archived": False}
                for i in body["inputs"]
                if i["id"] in store
            ]
            return 200, limits, {"status": "COMPLETE", "results": results}
        if m := re.fullmatch(rf"/crm/associations/{V}/(\w+)/(\w+)/batch/read", path):
            return 200, limits, self._associations(m.group(1), m.group(2), body)
        if m := re.fullmatch(rf"/crm/owners/{V}/(\w+)", path):
            email = self.owners.get(m.group(1))
            if email is None:
                return (
                    404,
                    {},
                    {"status": "error", "message": "Owner not found", "category": "OBJECT_NOT_FOUND"},
                )
            return 200, limits, {"id": m.group(1), "email": email, "type": "PERSON"}
        return 404, {}, {"status": "error", "message": f"no such path {path}"}

    def _write(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """Creating a note or task (with its associations) and updating any object, as HubSpot does."""
        if method == "POST" and (m := re.fullmatch(rf"/crm/objects/{V}/(notes|tasks)", path)):
            kind = m.group(1)
            oid = self.add(kind, dict(body.get("properties") or {}))
            for a in body.get("associations") or ():
                to = str(a["to"]["id"])
                for from_type in ("deals", "companies"):
                    if to in self.objects.get(from_type, {}):
                        self.link(from_type, to, kind, oid)
            return 201, {}, {"id": oid, "properties": self.objects[kind][oid]}
        if method == "PATCH" and (m := re.fullmatch(rf"/crm/objects/{V}/(\w+)/(\w+)", path)):
            store = self.objects.get(m.group(1), {})
            if m.group(2) not in store:
                return (
                    404,
                    {},
                    {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"},
                )
            store[m.group(2)].update(body.get("properties") or {})
            return 200, {}, {"id": m.group(2), "properties": store[m.group(2)]}
        return None

    def _search(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        rows = list(self.objects.get(object_type, {}).items())
        for group in body.get("filterGroups") or ():  # one group here: filters AND together
            for f in group["filters"]:
                prop, op = f["propertyName"], f["operator"]
                if op == "IN":
                    rows = [r for r in rows if str(r[1].get(prop)) in f["values"]]
                elif op == "EQ":
                    rows = [r for r in rows if str(r[1].get(prop)) == f["value"]]
                elif op == "GTE":
                    rows = [r for r in rows if _ms(r[1].get(prop)) >= int(f["value"])]
                elif op == "GT" and prop == "hs_object_id":
                    rows = [r for r in rows if int(r[0]) > int(f["value"])]
                else:
                    raise AssertionError(f"operator {op} not faked")
        for s in reversed(body.get("sorts") or ()):
            key = s["propertyName"]
            rows.sort(key=lambda r, k=key: _sortable(r[1].get(k)), reverse=s.get("direction") == "DESCENDING")
        start = int(body.get("after") or 0)
        size = min(int(body.get("limit") or 10), self.page_size)
        page = rows[start : start + size]
        wanted = body.get("properties") or []
        out: dict[str, Any] = {
            "total": len(rows),
            "results": [{"id": i, "properties": {p: props.get(p) for p in wanted}} for i, props in page],
        }
        if start + size < len(rows):
            out["paging"] = {"next": {"after": str(start + size), "link": "ignored"}}
        return out

    def _associations(self, from_type: str, to_type: str, body: dict[str, Any]) -> dict[str, Any]:
        links = self.links.get((from_type, to_type), {})
        results = []
        for inp in body["inputs"]:
            pairs = links.get(inp["id"]) or []
            if not pairs:
                continue
            start = int(inp.get("after") or 0)
            chunk = pairs[start : start + self.assoc_page_size]
            r: dict[str, Any] = {
                "from": {"id": inp["id"]},
                "to": [
                    {
                        "toObjectId": int(to),
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
                        + [
                            {"category": "USER_DEFINED", "typeId": 40 + n, "label": lb}
                            for n, lb in enumerate(labels)
                        ],
                    }
                    for to, labels in chunk
                ],
            }
            if start + self.assoc_page_size < len(pairs):
                r["paging"] = {"next": {"after": str(start + self.assoc_page_size)}}
            results.append(r)
        return {"status": "COMPLETE", "results": results}


def _ms(value: Any) -> int:
    return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


def _sortable(value: Any) -> Any:
    text = str(value)
    return int(text) if text.isdigit() else text


class FakeSalesforce(_Server):
    def __init__(self, version: str = "v62.0") -> None:
        super().__init__()
        self.version = version
        self.client_id, self.client_secret = "3MVG9-test", "sf-secret"
        self.valid_tokens: set[str] = set()
        self.opportunities: list[dict[str, Any]] = []
        self.accounts: list[dict[str, Any]] = []
        self.page_size = 2000
        self.used, self.allowed = 0, 15000
        self.limit_exceeded = False
        self.accept_sessions = True
        self.queries: list[str] = []
        self.sobjects: dict[str, dict[str, dict[str, Any]]] = {}  # type -> id -> fields (Note, Task, User...)
        self.lose: list[tuple[str, str, int]] = []  # (method, path prefix, status) after doing the write
        self._tokens = itertools.count(1)
        self._sf_ids = itertools.count(1)
        self._cursors: dict[str, list[dict[str, Any]]] = {}

    def expire_sessions(self) -> None:
        with self.lock:
            self.valid_tokens.clear()

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes, headers: Any) -> Any:
        auth = headers.get("Authorization")
        with self.lock:
            self.requests.append(Seen(method, path, raw.decode() or None, auth))
        if path == "/services/oauth2/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if (
                form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return 400, {}, {"error": "invalid_client", "error_description": "invalid client credentials"}
            token = f"00Dtoken{next(self._tokens)}"
            with self.lock:
                self.valid_tokens.add(token)
            return (
                200,
                {},
                {
                    "access_token": token,
                    "instance_url": self.base_url,
                    "id": f"{self.base_url}/id/00D/005",
                    "token_type": "Bearer",
                    "issued_at": "1764547200000",
                    "signature": "sig",
                },
            )
        if not self.accept_sessions or not auth or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return 401, {}, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        with self.lock:
            self.used += 1
            limit = {"Sforce-Limit-Info": f"api-usage={self.used}/{self.allowed}"}
        if self.limit_exceeded:
            return (
                403,
                limit,
                [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            )
        objects = f"/services/data/{self.version}/sobjects/"
        if path.startswith(objects) and method in ("POST", "PATCH"):
            answer = self._write(method, path[len(objects) :], json.loads(raw or b"{}"))
            with self.lock:
                for i, (m, prefix, status) in enumerate(self.lose):
                    if m == method and path.startswith(prefix):
                        del self.lose[i]
                        return status, limit, [{"message": "internal", "errorCode": "UNKNOWN_EXCEPTION"}]
            return answer[0], {**limit, **answer[1]}, answer[2]
        base = f"/services/data/{self.version}/query"
        if path == base:
            soql = query["q"][0]
            self.queries.append(soql)
            return 200, limit, self._page(self._select(soql), base)
        if path.startswith(base + "/"):
            rows = self._cursors.pop(path.rsplit("/", 1)[1], None)
            if rows is None:
                return (
                    400,
                    limit,
                    [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}],
                )
            return 200, limit, self._page(rows, base)
        return 404, limit, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]

    def add_sobject(self, sobject: str, fields: dict[str, Any]) -> str:
        prefix = {"Note": "002", "Task": "00T", "User": "005", "Account": "001", "Opportunity": "006"}
        oid = f"{prefix.get(sobject, 'a00')}{next(self._sf_ids):015d}"
        self.sobjects.setdefault(sobject, {})[oid] = {**fields, "Id": oid}
        return oid

    def _write(self, method: str, rest: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        parts = rest.split("/")
        if method == "POST" and len(parts) == 1:
            oid = self.add_sobject(parts[0], body)
            return 201, {}, {"id": oid, "success": True, "errors": []}
        if method == "PATCH" and len(parts) == 2:
            store = self.sobjects.get(parts[0], {})
            if parts[1] not in store:
                return 404, {}, [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]
            store[parts[1]].update(body)
            return 204, {}, None
        return 404, {}, [{"message": "not found", "errorCode": "NOT_FOUND"}]

    def _select(self, soql: str) -> list[dict[str, Any]]:
        if m := re.fullmatch(
            r"SELECT Id FROM (Note|Task|User) WHERE (.+?)( ORDER BY \w+)?( LIMIT \d+)?", soql
        ):
            rows = list(self.sobjects.get(m.group(1), {}).values())
            for cond in m.group(2).split(" AND "):
                if c := re.fullmatch(r"(\w+) = '(.*)'", cond):
                    rows = [r for r in rows if str(r.get(c.group(1))) == c.group(2).replace("\\'", "'")]
                elif c := re.fullmatch(r"(\w+) LIKE '%(.*)%'", cond):
                    rows = [r for r in rows if c.group(2) in str(r.get(c.group(1)) or "")]
                elif c := re.fullmatch(r"(\w+) = (true|false)", cond):
                    rows = [r for r in rows if bool(r.get(c.group(1))) == (c.group(2) == "true")]
                else:
                    raise AssertionError(f"condition not faked: {cond}")
            return [{"Id": r["Id"]} for r in rows]
        if " FROM Opportunity " in soql:
            assert "IsWon = true" in soql
            m = re.search(r"SystemModstamp >= (\S+)", soql)
            since = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")) if m else None
            rows = [o for o in self.opportunities if o.get("IsWon")]
            if since is not None:
                rows = [o for o in rows if _sf_time(o["SystemModstamp"]) >= since]
            return sorted(rows, key=lambda o: (_sf_time(o["SystemModstamp"]), o["Id"]))
        if " FROM Account" in soql:
            return sorted(self.accounts, key=lambda a: a["Id"])
        raise AssertionError(f"query not faked: {soql}")

    def _page(self, rows: list[dict[str, Any]], base: str) -> dict[str, Any]:
        page, rest = rows[: self.page_size], rows[self.page_size :]
        out: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": page}
        if rest:
            locator = f"01gRM{next(self._tokens):05d}-{self.page_size}"
            self._cursors[locator] = rest
            out["nextRecordsUrl"] = f"{base}/{locator}"
        return out


def _sf_time(text: str) -> datetime:
    return datetime.fromisoformat(text[:-2] + ":" + text[-2:] if text[-5] in "+-" else text)


def sf_records(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A subquery's answer, as Salesforce nests it (None when it has no rows)."""
    return {"totalSize": len(rows), "done": True, "records": rows} if rows else None


# what a customer company carries for the accounts sync (baton.yml's default hubspot.account_fields)
ACCOUNT_PROPERTIES = {
    "baton_plan": "Pro",
    "baton_mrr": "120000",
    "baton_seats": "50",
    "baton_contract_start": "2026-01-01",
    "baton_renewal_date": "2027-01-01",
}


@dataclass
class HubSpotDeal:
    """A won deal seeded with everything the handoff needs, for tests to assert against."""

    deal_id: str
    company_id: str
    contact_ids: list[str] = field(default_factory=list)
    line_item_ids: list[str] = field(default_factory=list)


def seed_hubspot_deal(
    hs: FakeHubSpot,
    *,
    name: str = "Acme Corp - Pro",
    company: str | None = None,  # default: the deal name's part before " - "
    modified: str = "2026-11-28T10:00:00.000Z",
    stage: str = "closedwon",
    owner: str | None = "77",
    owner_email: str | None = "rep@example.com",
) -> HubSpotDeal:
    if owner and owner_email:
        hs.owners[owner] = owner_email
    deal = hs.add(
        "deals",
        {
            "dealname": name,
            "amount": "1440000",
            "deal_currency_code": "JPY",
            "closedate": "2026-11-28T00:00:00Z",
            "dealstage": stage,
            "hubspot_owner_id": owner,
            "hs_lastmodifieddate": modified,
        },
    )
    company = company or name.split(" - ")[0]
    comp = hs.add("companies", {"name": company, "lifecyclestage": "customer", **ACCOUNT_PROPERTIES})
    hs.link("deals", deal, "companies", comp)
    c1 = hs.add(
        "contacts",
        {"firstname": "Taro", "lastname": "Yamada", "email": "yamada@acme.example", "jobtitle": "CTO"},
    )
    c2 = hs.add(
        "contacts",
        {"firstname": "Hanako", "lastname": "Sato", "email": "sato@acme.example", "jobtitle": "PM"},
    )
    hs.link("deals", deal, "contacts", c1, "Decision maker")
    hs.link("deals", deal, "contacts", c2)
    monthly = {"recurringbillingfrequency": "monthly", "hs_recurring_billing_period": "P12M"}
    li1 = hs.add(
        "line_items", {"name": "Pro plan", "quantity": "50", "price": "2000", "amount": "100000", **monthly}
    )
    li2 = hs.add(
        "line_items", {"name": "SSO add-on", "quantity": "1", "price": "20000", "amount": "20000", **monthly}
    )
    hs.link("deals", deal, "line_items", li1)
    hs.link("deals", deal, "line_items", li2)
    note = hs.add("notes", {"hs_note_body": "<p>Wants SSO by <b>January</b> &amp; a kickoff in Tokyo</p>",
                            "hs_timestamp": "2026-11-20T09:00:00Z"})  # fmt: skip
    hs.link("deals", deal, "notes", note)
    meeting = hs.add("meetings", {"hs_meeting_title": "Demo", "hs_meeting_body": "Security review passed",
                                  "hs_timestamp": "2026-11-10T09:00:00Z"})  # fmt: skip
    hs.link("deals", deal, "meetings", meeting)
    return HubSpotDeal(deal, comp, [c1, c2], [li1, li2])
