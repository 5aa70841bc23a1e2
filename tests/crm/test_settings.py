"""`crm:` in baton.yml and the CRM environment variables: defaults, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import ROOT, ConfigError, Rules, Settings


def load(tmp_path: Path, text: str) -> Rules:
    path = tmp_path / "baton.yml"
    path.write_text(text, encoding="utf-8")
    return Rules.load(path)


def test_the_shipped_baton_yml_has_the_defaults() -> None:
    crm = Rules.load(ROOT / "baton.yml").crm
    assert crm.poll_minutes == 15 and crm.backfill_days == 7
    assert crm.nudge_hours == 24 and crm.sales_lead == ""
    assert crm.hubspot.api_version == "2026-03" and crm.hubspot.won_stages == ("closedwon",)
    assert crm.salesforce.account_fields["mrr"] == "MRR__c"


def test_a_mapping_replaces_the_default_one(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "crm:\n  hubspot:\n    won_stages: [closedwon, '1234567']\n"
        "    account_fields: {account_id: hs_object_id, name: name, mrr: arr_monthly}\n"
        "  salesforce:\n    account_fields: {account_id: Id, name: Name, csm_email: Owner.Email}\n",
    )
    assert rules.crm.hubspot.won_stages == ("closedwon", "1234567")
    assert rules.crm.hubspot.account_fields == {
        "account_id": "hs_object_id",
        "name": "name",
        "mrr": "arr_monthly",
    }
    assert rules.crm.salesforce.account_fields["csm_email"] == "Owner.Email"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("crm:\n  pol_minutes: 5\n", "crm: unknown setting.*pol_minutes"),
        ("crm:\n  poll_minutes: 0\n", "poll_minutes 0"),
        ("crm:\n  hubspot:\n    api_version: v3\n", "crm.hubspot: api_version 'v3'"),
        ("crm:\n  hubspot:\n    account_fields: {mrr: x}\n", "account_id and name must be mapped"),
        ("crm:\n  hubspot:\n    account_fields: {account_id: a, name: b, arr: c}\n", "unknown column.*arr"),
        (
            "crm:\n  salesforce:\n    account_fields: {account_id: Id, name: 'Name; DROP'}\n",
            "not a field name",
        ),
        ("crm:\n  salesforce:\n    term_months: 0\n", "term_months 0"),
        ("crm:\n  salesforce:\n    api_version: '62'\n", "a Salesforce API version"),
        ("crm: [hubspot]\n", "write it as a mapping"),
        ("crm:\n  nudge_hours: 0\n", "nudge_hours 0: a whole number of hours from 1 to 720"),
        ("crm:\n  nudge_hours: 1.5\n", "nudge_hours 1.5"),
        ("crm:\n  nudge_hours: true\n", "nudge_hours True"),
        ("crm:\n  nudge_hours: 721\n", "nudge_hours 721"),
        ("crm:\n  sales_lead: '#sales'\n", "sales_lead '#sales': a Slack user id"),
        ("crm:\n  sales_lead: 12\n", "sales_lead 12"),
    ],
)
def test_a_wrong_crm_setting_is_one_clear_error(tmp_path: Path, yaml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, yaml)


def test_the_nudge_and_the_sales_lead_can_be_set(tmp_path: Path) -> None:
    crm = load(tmp_path, "crm:\n  nudge_hours: 48\n  sales_lead: C0SALES1\n").crm
    assert crm.nudge_hours == 48 and crm.sales_lead == "C0SALES1"
    assert load(tmp_path, "crm:\n  sales_lead: U0LEAD01\n").crm.sales_lead == "U0LEAD01"


def test_the_crm_variables_are_read_and_their_secrets_never_shown() -> None:
    s = Settings.from_env(
        {
            "HUBSPOT_ACCESS_TOKEN": "pat-na1-secret",
            "HUBSPOT_CLIENT_SECRET": "hs-client-secret",
            "HUBSPOT_API_URL": "http://127.0.0.1:9/",
            "SALESFORCE_CLIENT_ID": "3MVG9-id",
            "SALESFORCE_CLIENT_SECRET": "sf-secret",
            "SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com",
        }
    )
    assert s.hubspot_on and s.salesforce_on
    assert s.hubspot_api_url == "http://127.0.0.1:9"
    assert s.salesforce_login_url == "https://acme.my.salesforce.com"
    assert not any(
        secret in repr(s) for secret in ("pat-na1-secret", "hs-client-secret", "3MVG9-id", "sf-secret")
    )


def test_the_defaults_are_the_public_hosts_and_both_crms_off() -> None:
    s = Settings.from_env({})
    assert (s.hubspot_api_url, s.salesforce_login_url) == (
        "https://api.hubapi.com",
        "https://login.salesforce.com",
    )
    assert not s.hubspot_on and not s.salesforce_on


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="SALESFORCE_LOGIN_URL"):
        Settings.from_env({"SALESFORCE_LOGIN_URL": "login.salesforce.com"})


def test_the_write_back_settings_have_defaults_and_refuse_what_is_not_a_field(tmp_path: Path) -> None:
    crm = Rules.load(ROOT / "baton.yml").crm
    assert crm.hubspot.writeback is True and crm.hubspot.csm_property == "hubspot_owner_id"
    assert crm.salesforce.writeback is True and crm.salesforce.csm_field == "OwnerId"
    rules = load(tmp_path, "crm:\n  hubspot: {csm_property: csm_email}\n  salesforce: {csm_field: ''}\n")
    assert rules.crm.hubspot.csm_property == "csm_email" and rules.crm.salesforce.csm_field == ""
    with pytest.raises(ConfigError, match="csm_field 'Owner; DROP'"):
        load(tmp_path, "crm:\n  salesforce: {csm_field: 'Owner; DROP'}\n")
    with pytest.raises(ConfigError, match="writeback 'yes': true or false"):
        load(tmp_path, "crm:\n  hubspot: {writeback: 'yes'}\n")


def test_the_public_url_is_optional_and_must_be_a_url() -> None:
    assert Settings.from_env({}).public_url == ""
    assert Settings.from_env({"BATON_PUBLIC_URL": "https://baton.example.com/"}).public_url == (
        "https://baton.example.com"
    )
    with pytest.raises(ConfigError, match="BATON_PUBLIC_URL"):
        Settings.from_env({"BATON_PUBLIC_URL": "baton.example.com"})
