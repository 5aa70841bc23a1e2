"""csm_email to Slack user through users.lookupByEmail: looked up once and cached, an unknown email
reported once to the handoff channel in the team's language, a rate limit leaves the rest for later."""

from __future__ import annotations

from dataclasses import replace

from slack_sdk import WebClient
from sqlalchemy import select

from bot.delivery import Delivery
from bot.directory import resolve_csm_emails
from settings import Settings
from storage import Database
from storage.models import SlackUserEmail
from tests.bot.conftest import HANDOFF_CHANNEL
from tests.clocks import FakeClock
from tests.fakeslack import FakeSlack
from tests.storage.test_directory import crm_accounts


def _client(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.token, base_url=slack.base_url)


def test_emails_are_looked_up_once_and_an_unknown_one_is_reported_once(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    slack.emails["hana@example.com"] = "UHANA"
    crm_accounts(db, ("A1", "Acme", "Hana@Example.com"), ("A2", "Beta", "ken@example.com"))
    clock = FakeClock()
    result = resolve_csm_emails(db, _client(slack), clock)
    assert (result.looked_up, result.found, result.unknown, result.reported) == (2, 1, 1, 1)
    assert sorted(c.args["email"] for c in slack.of("users.lookupByEmail")) == [
        "hana@example.com",
        "ken@example.com",
    ]
    with db.session() as s:
        rows = {r.email: (r.user_id, r.error) for r in s.scalars(select(SlackUserEmail))}
    assert rows == {"hana@example.com": ("UHANA", None), "ken@example.com": (None, "users_not_found")}

    ja = replace(settings, locale="ja")
    assert Delivery(db, _client(slack), ja, clock).run().sent == 1
    (post,) = [c.args for c in slack.of("chat.postMessage")]
    assert post["channel"] == HANDOFF_CHANNEL
    assert (
        "csm_email「ken@example.com」に一致するSlackユーザーが見つかりません（対象の顧客：Beta）"
        in post["text"]
    )

    clock.advance(hours=2)  # the hourly job: everything is cached
    assert resolve_csm_emails(db, _client(slack), clock).looked_up == 0
    clock.advance(days=1)  # the miss is retried daily, and stays unreported
    again = resolve_csm_emails(db, _client(slack), clock)
    assert (again.looked_up, again.unknown, again.reported) == (1, 1, 0)
    assert len(slack.of("users.lookupByEmail")) == 3
    assert Delivery(db, _client(slack), ja, clock).run().sent == 0


def test_the_report_names_the_email_and_the_accounts_in_english(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    crm_accounts(db, ("A1", "Acme", "ken@example.com"), ("A2", "Beta", "ken@example.com"))
    resolve_csm_emails(db, _client(slack), FakeClock())
    Delivery(db, _client(slack), settings, FakeClock()).run()
    (post,) = [c.args for c in slack.of("chat.postMessage")]
    assert post["text"] == "No Slack user has the email ken@example.com, the csm_email of Acme, Beta."


def test_a_rate_limit_stops_the_run_and_leaves_the_rest_for_later(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    slack.emails.update({"a@example.com": "UA", "b@example.com": "UB"})
    crm_accounts(db, ("A1", "Acme", "a@example.com"), ("A2", "Beta", "b@example.com"))
    slack.fail["users.lookupByEmail"] = [(429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})]
    clock = FakeClock()
    first = resolve_csm_emails(db, _client(slack), clock)
    assert (first.looked_up, first.failed) == (0, ["a@example.com", "b@example.com"])
    assert len(slack.of("users.lookupByEmail")) == 1  # no hammering after a 429
    clock.advance(minutes=1)
    second = resolve_csm_emails(db, _client(slack), clock)
    assert (second.looked_up, second.found) == (2, 2)
