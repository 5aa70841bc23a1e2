"""The Salesforce client against a fake org on loopback: the client-credentials token, SOQL pages
followed by nextRecordsUrl, an expired session renewed once, the daily request limit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from crm.http import CrmAuthError, RateLimited
from crm.salesforce import Salesforce
from settings import SalesforceRules
from tests.crm.conftest import Sleeps
from tests.crm.fakecrm import FakeSalesforce, sf_records

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def opportunity(
    n: int, *, stamp: str = "2026-11-28T10:00:00.000+0000", won: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v62.0/sobjects/Opportunity/006{n:015d}",
        },
        "Id": f"006{n:015d}",
        "Name": f"Deal {n}",
        "Amount": 1440000.0,
        "CloseDate": "2026-11-28",
        "IsWon": won,
        "SystemModstamp": stamp,
        "AccountId": f"001{n:015d}",
        "Account": {"attributes": {"type": "Account"}, "Name": f"株式会社テスト{n}"},
        "Owner": {"attributes": {"type": "User"}, "Email": "rep@example.com"},
        "OpportunityContactRoles": sf_records(
            [
                {
                    "Role": "Decision Maker",
                    "IsPrimary": True,
                    "Contact": {"Name": "山田 太郎", "Email": "yamada@test.example"},
                }
            ]
        ),
        "OpportunityLineItems": sf_records(
            [
                {
                    "Name": "Pro",
                    "Quantity": 50.0,
                    "UnitPrice": 28800.0,
                    "TotalPrice": 1440000.0,
                    "Product2": {"Name": "Pro plan"},
                }
            ]
        ),
        "ActivityHistories": sf_records(
            [
                {
                    "Subject": "Kickoff call",
                    "ActivityDate": "2026-11-25",
                    "Description": "SSO first",
                    "ActivityType": "Call",
                }
            ]
        ),
        **extra,
    }


def client(sf: FakeSalesforce, sleeps: Sleeps, **rules: Any) -> Salesforce:
    return Salesforce(sf.base_url, sf.client_id, sf.client_secret, SalesforceRules(**rules), sleep=sleeps)


def test_a_won_opportunity_maps_to_a_won_deal(salesforce: FakeSalesforce, sleeps: Sleeps) -> None:
    salesforce.opportunities = [opportunity(1)]
    [(deal, stamp)] = list(client(salesforce, sleeps).won_deals(SINCE))
    assert (deal.crm, deal.deal_id, deal.account_name) == (
        "salesforce",
        "006000000000000001",
        "株式会社テスト1",
    )
    assert (deal.amount, deal.currency, deal.close_date) == (Decimal("1440000.0"), "JPY", date(2026, 11, 28))
    assert deal.renewal_date == date(2027, 11, 28)  # close + term_months (12)
    assert deal.owner_email == "rep@example.com"
    assert [(c.name, c.role, c.primary) for c in deal.contacts] == [("山田 太郎", "Decision Maker", True)]
    assert [(li.name, li.quantity) for li in deal.line_items] == [("Pro plan", Decimal("50.0"))]
    assert [(a.kind, a.text) for a in deal.activities] == [("call", "Kickoff call — SSO first")]
    assert deal.url == f"{salesforce.base_url}/006000000000000001"
    assert stamp == datetime(2026, 11, 28, 10, tzinfo=UTC)


def test_the_poll_asks_on_systemmodstamp_from_the_watermark(
    salesforce: FakeSalesforce, sleeps: Sleeps
) -> None:
    salesforce.opportunities = [
        opportunity(1, stamp="2026-10-31T23:59:59.000+0000"),
        opportunity(2),
        opportunity(3, won=False),
    ]
    got = [d.deal_id for d, _ in client(salesforce, sleeps).won_deals(SINCE)]
    assert got == ["006000000000000002"]
    [soql] = salesforce.queries
    assert "SystemModstamp >= 2026-11-01T00:00:00Z" in soql and "LastModifiedDate" not in soql
    assert "ORDER BY SystemModstamp ASC" in soql


def test_every_page_is_followed_by_next_records_url(salesforce: FakeSalesforce, sleeps: Sleeps) -> None:
    salesforce.opportunities = [
        opportunity(n, stamp=f"2026-11-{n:02d}T00:00:00.000+0000") for n in range(2, 9)
    ]
    salesforce.page_size = 3
    got = list(client(salesforce, sleeps).won_deals(SINCE))
    assert len(got) == 7
    assert len([p for p in salesforce.paths() if p.startswith("/services/data/v62.0/query/")]) == 2


def test_an_expired_session_logs_in_again_once(salesforce: FakeSalesforce, sleeps: Sleeps) -> None:
    salesforce.opportunities = [
        opportunity(n, stamp=f"2026-11-{n:02d}T00:00:00.000+0000") for n in range(2, 6)
    ]
    salesforce.page_size = 2
    sf = client(salesforce, sleeps)
    rows = sf.won_deals(SINCE)
    first = next(rows)
    salesforce.expire_sessions()  # the token expires between two pages
    assert len([first, *rows]) == 4
    assert sf.logins == 2


def test_a_session_refused_again_after_logging_in_is_an_error(
    salesforce: FakeSalesforce, sleeps: Sleeps
) -> None:
    salesforce.accept_sessions = (
        False  # tokens are issued, the data API refuses them (run-as user lacks access)
    )
    sf = client(salesforce, sleeps)
    with pytest.raises(CrmAuthError, match="fresh token"):
        list(sf.won_deals(SINCE))
    assert sf.logins == 2 and len([p for p in salesforce.paths() if "/query" in p]) == 2


def test_wrong_client_credentials_say_what_to_check(salesforce: FakeSalesforce, sleeps: Sleeps) -> None:
    sf = Salesforce(salesforce.base_url, "wrong", "wrong", SalesforceRules(), sleep=sleeps)
    with pytest.raises(CrmAuthError, match=r"invalid client credentials.*SALESFORCE_CLIENT_ID"):
        list(sf.won_deals(SINCE))


def test_request_limit_exceeded_stops_with_the_usage(salesforce: FakeSalesforce, sleeps: Sleeps) -> None:
    salesforce.limit_exceeded = True
    salesforce.used = 14999
    with pytest.raises(RateLimited, match="api-usage=15000/15000"):
        list(client(salesforce, sleeps).won_deals(SINCE))
    assert sleeps == []


def test_a_renewal_field_and_a_currency_field_are_read_when_configured(
    salesforce: FakeSalesforce, sleeps: Sleeps
) -> None:
    salesforce.opportunities = [opportunity(1, Contract_End__c="2027-05-31", CurrencyIsoCode="USD")]
    sf = client(salesforce, sleeps, renewal_field="Contract_End__c", currency_field="CurrencyIsoCode")
    [(deal, _)] = list(sf.won_deals(SINCE))
    assert (deal.renewal_date, deal.currency) == (date(2027, 5, 31), "USD")
    assert "Contract_End__c" in salesforce.queries[0]


def test_accounts_for_the_sync_use_the_where_clause_and_mapped_fields(
    salesforce: FakeSalesforce, sleeps: Sleeps
) -> None:
    salesforce.accounts = [{"attributes": {"type": "Account"}, "Id": "001A", "Name": "A社", "MRR__c": 1000.0}]
    rows = list(client(salesforce, sleeps).account_rows())
    assert [i for i, _ in rows] == ["001A"]
    [soql] = salesforce.queries
    assert soql.startswith("SELECT ") and "MRR__c" in soql and "WHERE Type = 'Customer'" in soql
