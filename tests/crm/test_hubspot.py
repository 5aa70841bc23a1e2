"""The HubSpot client against a fake HubSpot on loopback: won deals with their company, contacts
(association labels as roles), line items and activities; paging; 429s and 401s as HubSpot sends them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from crm.http import CrmAuthError, RateLimited
from crm.hubspot import HubSpot
from settings import HubSpotRules
from tests.crm.conftest import Sleeps
from tests.crm.fakecrm import FakeHubSpot, seed_hubspot_deal

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def client(hs: FakeHubSpot, sleeps: Sleeps, **kw: object) -> HubSpot:
    return HubSpot(hs.base_url, hs.token, HubSpotRules(), sleep=sleeps, **kw)  # type: ignore[arg-type]


def test_a_won_deal_comes_with_its_company_contacts_line_items_and_activities(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seeded = seed_hubspot_deal(hubspot)
    [(deal, modified)] = list(client(hubspot, sleeps).won_deals(SINCE))
    assert deal.deal_id == seeded.deal_id and deal.crm == "hubspot"
    assert (deal.account_name, deal.company_id) == ("Acme Corp", seeded.company_id)
    assert (deal.amount, deal.currency, deal.close_date) == (Decimal("1440000"), "JPY", date(2026, 11, 28))
    assert deal.owner_email == "rep@example.com"
    assert deal.renewal_date == date(2027, 11, 28)  # close date + the plan's P12M
    assert [(li.name, li.quantity, li.billing_period) for li in deal.line_items] == [
        ("Pro plan", Decimal("50"), "monthly"),
        ("SSO add-on", Decimal("1"), "monthly"),
    ]
    assert [(c.name, c.role, c.email) for c in deal.contacts] == [
        ("Taro Yamada", "Decision maker", "yamada@acme.example"),
        ("Hanako Sato", "PM", "sato@acme.example"),  # no label: the job title
    ]
    assert [(a.kind, a.when, a.text) for a in deal.activities] == [
        ("note", date(2026, 11, 20), "Wants SSO by January & a kickoff in Tokyo"),
        ("meeting", date(2026, 11, 10), "Demo — Security review passed"),
    ]
    assert modified == datetime(2026, 11, 28, 10, tzinfo=UTC)


def test_japanese_names_take_the_family_name_first_and_inline_tags_add_no_space(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seeded = seed_hubspot_deal(hubspot)
    person = hubspot.add("contacts", {"firstname": "陽翔", "lastname": "小林", "email": "k@aoba.example"})
    hubspot.link("deals", seeded.deal_id, "contacts", person, "決裁者")
    body = "<p>契約締結。</p><p><b>最初の</b>レポートを<br>30日以内に</p>"
    note = hubspot.add("notes", {"hs_note_body": body, "hs_timestamp": "2026-11-25T09:00:00Z"})
    hubspot.link("deals", seeded.deal_id, "notes", note)
    [(deal, _)] = list(client(hubspot, sleeps).won_deals(SINCE))
    names = [c.name for c in deal.contacts]
    assert names == ["Taro Yamada", "Hanako Sato", "小林 陽翔"]  # romaji: as given
    # paragraphs and breaks become a space; <b> none
    assert deal.activities[0].text == "契約締結。 最初のレポートを 30日以内に"


def test_only_date_versioned_paths_are_called(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    seed_hubspot_deal(hubspot)
    list(client(hubspot, sleeps).won_deals(SINCE))
    paths = hubspot.paths()
    assert paths and not [p for p in paths if "/v3/" in p or "/v4/" in p]
    assert "/crm/objects/2026-03/deals/search" in paths
    assert "/crm/associations/2026-03/deals/contacts/batch/read" in paths


def test_the_search_asks_for_won_stages_modified_since_the_watermark_oldest_first(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seed_hubspot_deal(hubspot, modified="2026-10-30T00:00:00Z")  # before the watermark
    seed_hubspot_deal(hubspot, name="Open deal", stage="contractsent", modified="2026-11-20T00:00:00Z")
    late = seed_hubspot_deal(hubspot, name="Late", modified="2026-11-29T00:00:00Z")
    early = seed_hubspot_deal(hubspot, name="Early", modified="2026-11-02T00:00:00Z")
    got = [d.deal_id for d, _ in client(hubspot, sleeps).won_deals(SINCE)]
    assert got == [early.deal_id, late.deal_id]
    search = next(r for r in hubspot.requests if r.path.endswith("/deals/search"))
    filters = search.body["filterGroups"][0]["filters"]
    assert {
        "propertyName": "hs_lastmodifieddate",
        "operator": "GTE",
        "value": str(int(SINCE.timestamp() * 1000)),
    } in filters


def test_search_pages_and_association_pages_are_all_followed(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    ids = [
        seed_hubspot_deal(hubspot, name=f"D{i}", modified=f"2026-11-{10 + i}T00:00:00Z").deal_id
        for i in range(5)
    ]
    extra = [hubspot.add("contacts", {"firstname": f"P{i}", "email": f"p{i}@x.example"}) for i in range(3)]
    for c in extra:
        hubspot.link("deals", ids[0], "contacts", c)
    hubspot.page_size, hubspot.assoc_page_size = 2, 2
    deals = list(client(hubspot, sleeps).won_deals(SINCE))
    assert [d.deal_id for d, _ in deals] == ids
    assert len([r for r in hubspot.requests if r.path.endswith("/deals/search")]) == 3
    assert len(deals[0][0].contacts) == 5  # 2 seeded + 3 more, over three association pages


def test_a_429_with_retry_after_is_waited_out_then_the_call_goes_through(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seed_hubspot_deal(hubspot)
    hubspot.rate_limit("/crm/objects/2026-03/deals/search", times=2, headers={"Retry-After": "3"})
    assert len(list(client(hubspot, sleeps).won_deals(SINCE))) == 1
    assert sleeps == [3.0, 3.0]


def test_a_429_without_retry_after_waits_the_window_the_rate_limit_headers_name(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seed_hubspot_deal(hubspot)
    window = {"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
    hubspot.rate_limit("/crm/associations/", headers=window)
    hubspot.rate_limit("/crm/objects/2026-03/deals/search", policy="SECONDLY")  # the search API's 4/s
    assert len(list(client(hubspot, sleeps).won_deals(SINCE))) == 1
    assert sorted(sleeps) == [1.0, 10.0]


def test_a_429_storm_gives_up_with_the_policy_named(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    seed_hubspot_deal(hubspot)
    hubspot.rate_limit("/", times=50, headers={"Retry-After": "1"})
    with pytest.raises(RateLimited, match="TEN_SECONDLY_ROLLING"):
        list(client(hubspot, sleeps).won_deals(SINCE))
    assert len(sleeps) == 5 and len(hubspot.requests) == 6


def test_the_daily_limit_is_reported_not_slept_through(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    hubspot.rate_limit("/", policy="DAILY")
    with pytest.raises(RateLimited, match="DAILY"):
        list(client(hubspot, sleeps).won_deals(SINCE))
    assert sleeps == []


def test_an_expired_token_is_one_clear_error(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    hs = HubSpot(hubspot.base_url, "pat-expired", HubSpotRules(), sleep=sleeps)
    with pytest.raises(CrmAuthError, match=r"HUBSPOT_ACCESS_TOKEN.*expired"):
        list(hs.won_deals(SINCE))


def test_an_expired_oauth_token_is_refreshed_once(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    seed_hubspot_deal(hubspot)
    refreshes: list[int] = []

    def refresh() -> str:
        refreshes.append(1)
        return hubspot.token

    hs = HubSpot(hubspot.base_url, "expired", HubSpotRules(), sleep=sleeps, refresh=refresh)
    assert len(list(hs.won_deals(SINCE))) == 1
    assert refreshes == [1]


def test_a_refresh_that_is_refused_too_stops_after_one_try(hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    refreshes: list[int] = []

    def refresh() -> str:
        refreshes.append(1)
        return "still-wrong"

    hs = HubSpot(hubspot.base_url, "expired", HubSpotRules(), sleep=sleeps, refresh=refresh)
    with pytest.raises(CrmAuthError):
        list(hs.won_deals(SINCE))
    assert refreshes == [1] and len(hubspot.requests) == 2


def test_companies_for_the_accounts_sync_are_the_filtered_ones_with_the_mapped_properties(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    keep = hubspot.add("companies", {"name": "Kept KK", "lifecyclestage": "customer", "baton_mrr": "120000"})
    hubspot.add("companies", {"name": "Prospect", "lifecyclestage": "lead"})
    hubspot.page_size = 1
    rows = list(client(hubspot, sleeps).account_rows())
    assert [(i, p["name"], p["baton_mrr"]) for i, p in rows] == [(keep, "Kept KK", "120000")]
    search = next(r for r in hubspot.requests if r.path.endswith("/companies/search"))
    assert "baton_renewal_date" in search.body["properties"]


def test_more_customers_than_one_search_may_page_through_all_sync(
    hubspot: FakeHubSpot, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crm.hubspot

    monkeypatch.setattr(crm.hubspot, "SEARCH_CAP", 6)  # HubSpot's is 10,000; the fake refuses past it
    hubspot.search_cap, hubspot.page_size = 6, 2
    kept = [hubspot.add("companies", {"name": f"C{n}", "lifecyclestage": "customer"}) for n in range(15)]
    hubspot.add("companies", {"name": "Prospect", "lifecyclestage": "lead"})
    rows = list(client(hubspot, sleeps).account_rows())
    assert [i for i, _ in rows] == kept  # all 15, each once, past two caps
    searches = [r for r in hubspot.requests if r.path.endswith("/companies/search")]
    assert all(int(r.body.get("after") or 0) < 6 for r in searches)  # never paged past the cap


def test_deals_named_by_a_webhook_are_read_and_only_won_ones_kept(
    hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    won = seed_hubspot_deal(hubspot)
    open_ = seed_hubspot_deal(hubspot, name="Open", stage="appointmentscheduled")
    got = [d.deal_id for d, _ in client(hubspot, sleeps).deals([won.deal_id, open_.deal_id, "404404"])]
    assert got == [won.deal_id]
