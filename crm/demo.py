"""A fake HubSpot for ``python app.py demo``: an ``httpx.MockTransport`` handler answering the calls
crm/hubspot.py and crm/writeback.py make, in the documented shapes (date-versioned search with
``paging``, batch reads, associations v4 with labels, owners, note and task creation, PATCH), over
one account holding one won deal. Nothing leaves the process: the demo runs the real client, sync,
and write-back against it, and every request is kept so the demo can show what Baton wrote."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from settings import HubSpotRules

BASE_URL = "https://api.hubapi.demo"  # never resolved: the transport answers every request
TOKEN = "pat-demo"
DEAL_ID = "9001"
OWNER_EMAIL = "kenta.mori@baton-demo.example"  # the deal owner: the demo's field sales rep

_STORY: dict[str, dict[str, Any]] = {  # the won deal's words, in the demo's language
    "en": {
        "deal": "Aoba Manufacturing - Enterprise",
        "company": "Aoba Manufacturing",
        "contacts": [
            ("Haruto", "Kobayashi", "h.kobayashi@aoba-mfg.example", "Decision maker"),
            ("Yui", "Ishikawa", "y.ishikawa@aoba-mfg.example", "Champion"),
        ],
        "items": [
            ("Enterprise plan", 60, 12_500, "monthly", "P12M"),
            ("Onboarding workshop", 1, 300_000, None, None),
        ],
        "notes": [
            (9, "<p>Security review passed; SSO (SAML) is required at go-live.</p>"),
            (3, "<p>Signed. They want the <b>first support KPI report</b> within 30 days.</p>"),
        ],
        "meeting": (5, "Final proposal to the board", "Approved a 12-month term, 60 seats."),
    },
    "ja": {
        "deal": "あおば製作所 - Enterprise",
        "company": "株式会社あおば製作所",
        "contacts": [
            ("陽翔", "小林", "h.kobayashi@aoba-mfg.example", "決裁者"),
            ("結衣", "石川", "y.ishikawa@aoba-mfg.example", "推進担当"),
        ],
        "items": [
            ("Enterprise プラン", 60, 12_500, "monthly", "P12M"),
            ("導入ワークショップ", 1, 300_000, None, None),
        ],
        "notes": [
            (9, "<p>セキュリティ審査を通過。本番開始時にSSO（SAML）が必須。</p>"),
            (3, "<p>契約締結。<b>最初のサポートKPIレポート</b>を30日以内に欲しいとのこと。</p>"),
        ],
        "meeting": (5, "役員会での最終提案", "12か月契約・60席で承認。"),
    },
}


@dataclass
class Request:
    method: str
    path: str
    body: Any
    status: int = 0  # the demo HubSpot's answer


class DemoHubSpot:
    """One HubSpot account with one deal won yesterday (in ``today``'s terms), modified an hour before
    ``now``. ``handler`` is the MockTransport's; ``client()`` an httpx client on it."""

    def __init__(
        self, *, now: datetime, today: date, locale: str = "en", rules: HubSpotRules | None = None
    ) -> None:
        self.rules = rules or HubSpotRules()
        self.v = self.rules.api_version
        self.requests: list[Request] = []
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.links: dict[tuple[str, str], dict[str, list[tuple[str, list[str]]]]] = {}
        self.owners = {"301": OWNER_EMAIL}
        self._ids = itertools.count(5001)
        story = _STORY.get(locale, _STORY["en"])
        modified = (now - timedelta(hours=1)).astimezone(UTC)
        self._add(
            "deals",
            DEAL_ID,
            dealname=story["deal"],
            amount="9300000",
            deal_currency_code="JPY",
            closedate=f"{today - timedelta(days=1)}T00:00:00Z",
            dealstage=self.rules.won_stages[0],
            hubspot_owner_id="301",
            hs_lastmodifieddate=modified.isoformat().replace("+00:00", "Z"),
        )
        company = self._add("companies", "7001", name=story["company"], lifecyclestage="customer")
        self._link("deals", DEAL_ID, "companies", company)
        for first, last, email, role in story["contacts"]:
            c = self._add("contacts", None, firstname=first, lastname=last, email=email)
            self._link("deals", DEAL_ID, "contacts", c, role)
        for name, qty, price, freq, period in story["items"]:
            li = self._add(
                "line_items",
                None,
                name=name,
                quantity=str(qty),
                price=str(price),
                amount=str(qty * price),
                recurringbillingfrequency=freq,
                hs_recurring_billing_period=period,
            )
            self._link("deals", DEAL_ID, "line_items", li)
        for days_ago, body in story["notes"]:
            n = self._add(
                "notes", None, hs_note_body=body, hs_timestamp=f"{today - timedelta(days=days_ago)}T09:00:00Z"
            )
            self._link("deals", DEAL_ID, "notes", n)
        days_ago, title, body = story["meeting"]
        m = self._add(
            "meetings",
            None,
            hs_meeting_title=title,
            hs_meeting_body=body,
            hs_timestamp=f"{today - timedelta(days=days_ago)}T05:00:00Z",
        )
        self._link("deals", DEAL_ID, "meetings", m)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), timeout=5)

    def written(self) -> list[Request]:
        """The notes and tasks Baton created or updated, in order (a PATCH of one this fake never had,
        from an earlier demo run, is answered 404 and the note is created again)."""
        return [
            r
            for r in self.requests
            if r.method in ("POST", "PATCH") and r.status < 300 and re.search(r"/(notes|tasks)(/|$)", r.path)
        ]

    # --- building the account -------------------------------------------------------------------
    def _add(self, object_type: str, oid: str | None, **props: Any) -> str:
        oid = oid or str(next(self._ids))
        self.objects.setdefault(object_type, {})[oid] = {**props, "hs_object_id": oid}
        return oid

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str, *labels: str) -> None:
        self.links.setdefault((from_type, to_type), {}).setdefault(from_id, []).append((to_id, list(labels)))

    # --- the API --------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen = Request(request.method, request.url.path, body)
        self.requests.append(seen)
        answer = self._answer(request, seen.path, body)
        seen.status = answer.status_code
        return answer

    def _answer(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _json(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        v, method = re.escape(self.v), request.method
        if method == "POST" and (m := re.fullmatch(rf"/crm/objects/{v}/(\w+)/search", path)):
            return _json(200, self._search(m.group(1), body or {}))
        if method == "POST" and (m := re.fullmatch(rf"/crm/objects/{v}/(\w+)/batch/read", path)):
            store, wanted = self.objects.get(m.group(1), {}), (body or {}).get("properties") or []
            results = [
                {"id": i["id"], "properties": {p: store[i["id"]].get(p) for p in wanted}, "archived": False}
                for i in (body or {}).get("inputs") or ()
                if i["id"] in store
            ]
            return _json(200, {"status": "COMPLETE", "results": results})
        if method == "POST" and (m := re.fullmatch(rf"/crm/associations/{v}/(\w+)/(\w+)/batch/read", path)):
            return _json(200, self._associations(m.group(1), m.group(2), body or {}))
        if method == "POST" and (m := re.fullmatch(rf"/crm/objects/{v}/(notes|tasks)", path)):
            oid = self._add(m.group(1), None, **((body or {}).get("properties") or {}))
            for a in (body or {}).get("associations") or ():
                for from_type in ("deals", "companies"):
                    if str(a["to"]["id"]) in self.objects.get(from_type, {}):
                        self._link(from_type, str(a["to"]["id"]), m.group(1), oid)
            return _json(201, {"id": oid, "properties": self.objects[m.group(1)][oid]})
        if method == "PATCH" and (m := re.fullmatch(rf"/crm/objects/{v}/(\w+)/(\w+)", path)):
            found = self.objects.get(m.group(1), {}).get(m.group(2))
            if found is None:
                return _json(
                    404, {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"}
                )
            found.update((body or {}).get("properties") or {})
            return _json(200, {"id": m.group(2), "properties": found})
        if method == "GET" and path == f"/crm/owners/{self.v}":
            email = request.url.params.get("email", "")
            return _json(
                200,
                {
                    "results": [
                        {"id": k, "email": e, "type": "PERSON"} for k, e in self.owners.items() if e == email
                    ]
                },
            )
        if method == "GET" and (m := re.fullmatch(rf"/crm/owners/{v}/(\w+)", path)):
            if m.group(1) not in self.owners:
                return _json(
                    404, {"status": "error", "message": "Owner not found", "category": "OBJECT_NOT_FOUND"}
                )
            return _json(200, {"id": m.group(1), "email": self.owners[m.group(1)], "type": "PERSON"})
        return _json(404, {"status": "error", "message": f"the demo HubSpot has no {method} {path}"})

    def _search(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """The filters the client sends (IN, EQ, GTE on a time), one page (the demo has one deal)."""
        rows = list(self.objects.get(object_type, {}).items())
        for group in body.get("filterGroups") or ():
            for f in group.get("filters") or ():
                prop, op = f["propertyName"], f["operator"]
                if op == "IN":
                    rows = [r for r in rows if str(r[1].get(prop)) in f["values"]]
                elif op == "EQ":
                    rows = [r for r in rows if str(r[1].get(prop)) == f["value"]]
                elif op == "GTE":
                    rows = [r for r in rows if _ms(r[1].get(prop)) >= int(f["value"])]
        wanted = body.get("properties") or []
        results = [{"id": i, "properties": {p: props.get(p) for p in wanted}} for i, props in rows]
        return {"total": len(results), "results": results}

    def _associations(self, from_type: str, to_type: str, body: dict[str, Any]) -> dict[str, Any]:
        links = self.links.get((from_type, to_type), {})
        results = []
        for inp in body.get("inputs") or ():
            pairs = links.get(inp["id"]) or []
            if pairs:
                to = [
                    {
                        "toObjectId": int(t),
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
                        + [
                            {"category": "USER_DEFINED", "typeId": 40 + n, "label": lb}
                            for n, lb in enumerate(labels)
                        ],
                    }
                    for t, labels in pairs
                ]
                results.append({"from": {"id": inp["id"]}, "to": to})
        return {"status": "COMPLETE", "results": results}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _ms(value: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0
