"""The csm_email -> Slack user cache: what needs a lookup when, one report per unknown email, and who
owns an account."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ingest import ingest_accounts, records
from storage import Database
from storage.directory import (
    NOT_FOUND,
    emails_to_look_up,
    learn,
    mapped_users,
    owner,
    owners,
    queue_unknown_reports,
    record_lookup,
)
from storage.models import Account, Outbox
from tests.clocks import FakeClock

NOW = datetime(2026, 11, 23, 1, tzinfo=UTC)
HEADER = "account_id,name,plan,mrr,seats,contract_start,renewal_date,csm_email,status\n"


def crm_accounts(db: Database, *rows: tuple[str, str, str]) -> None:
    """Accounts as a CRM export sends them: (account_id, name, csm_email); ids starting "old" churned."""
    text = HEADER + "".join(
        f"{ext},{name},Pro,100000,10,2026-01-01,2027-10-01,{email},"
        f"{'churned' if ext.startswith('old') else 'active'}\n"
        for ext, name, email in rows
    )
    with db.session() as s:
        ingest_accounts(s, records(io.StringIO(text), "csv"), as_of=NOW.date(), now=FakeClock(NOW)())


def _reports(db: Database) -> list[dict]:
    with db.session() as s:
        return [r.payload for r in s.scalars(select(Outbox).where(Outbox.action == "csm_unknown"))]


def test_only_needed_emails_are_looked_up_and_answers_are_kept_a_week_or_a_day(db: Database) -> None:
    crm_accounts(
        db,
        ("A1", "Acme", "Hana@Example.com"),
        ("A2", "Beta", "hana@example.com"),  # the same CSM, case aside: one lookup
        ("A3", "Gamma", "ken@example.com"),
        ("A4", "Delta", "assigned@example.com"),
        ("old1", "Gone", "gone@example.com"),  # churned: nobody needs its CSM
    )
    with db.session() as s:
        s.scalars(select(Account).where(Account.name == "Delta")).one().csm_user_id = "UHANDOFF"
    with db.session() as s:
        assert emails_to_look_up(s, NOW) == ["hana@example.com", "ken@example.com"]
        record_lookup(s, "hana@example.com", "UHANA", None, NOW)
        record_lookup(s, "ken@example.com", None, NOT_FOUND, NOW)
    with db.session() as s:
        assert emails_to_look_up(s, NOW + timedelta(hours=23)) == []
        assert emails_to_look_up(s, NOW + timedelta(days=1)) == ["ken@example.com"]  # misses: daily
        assert emails_to_look_up(s, NOW + timedelta(days=7)) == ["hana@example.com", "ken@example.com"]
        assert mapped_users(s) == {"hana@example.com": "UHANA"}


def test_an_unknown_email_is_reported_once_even_when_retried_daily(db: Database) -> None:
    crm_accounts(db, ("A1", "Acme", "ken@example.com"), ("A2", "Beta", "KEN@example.com"))
    with db.session() as s:
        record_lookup(s, "ken@example.com", None, NOT_FOUND, NOW)
        assert queue_unknown_reports(s, NOW) == 1
    assert _reports(db) == [{"email": "ken@example.com", "accounts": ["Acme", "Beta"], "more": 0}]
    for day in (1, 2):  # the daily retry misses again: nothing more in the channel
        with db.session() as s:
            record_lookup(s, "ken@example.com", None, NOT_FOUND, NOW + timedelta(days=day))
            assert queue_unknown_reports(s, NOW + timedelta(days=day)) == 0
    assert len(_reports(db)) == 1
    with db.session() as s:  # Ken joins Slack, later leaves: that is news again
        record_lookup(s, "ken@example.com", "UKEN", None, NOW + timedelta(days=3))
        record_lookup(s, "ken@example.com", None, NOT_FOUND, NOW + timedelta(days=30))
        assert queue_unknown_reports(s, NOW + timedelta(days=30)) == 1


def test_an_unknown_email_no_account_needs_is_not_reported(db: Database) -> None:
    crm_accounts(db, ("A1", "Acme", "ken@example.com"))
    with db.session() as s:
        record_lookup(s, "ken@example.com", None, NOT_FOUND, NOW)
        s.scalars(select(Account)).one().csm_user_id = "UASSIGNED"
        assert queue_unknown_reports(s, NOW) == 0
    assert _reports(db) == []


def test_the_handoffs_csm_owns_the_account_before_the_csm_email(db: Database) -> None:
    crm_accounts(db, ("A1", "Acme", "Hana@example.com"), ("A2", "Beta", "ken@example.com"))
    with db.session() as s:
        record_lookup(s, "hana@example.com", "UHANA", None, NOW)
        acme, beta = s.scalars(select(Account).order_by(Account.name)).all()
        mapped = mapped_users(s)
        assert owner(acme, None, mapped) == "UHANA"
        assert owner(beta, None, mapped) is None  # not looked up (or unknown): nobody yet
        acme.csm_user_id = "UASSIGNED"
        s.flush()
        assert owners(s, [acme.id, beta.id]) == {acme.id: "UASSIGNED", beta.id: None}


def test_the_home_tab_viewer_teaches_their_own_email_only_when_an_account_needs_it(db: Database) -> None:
    crm_accounts(db, ("A1", "Acme", "hana@example.com"))
    with db.session() as s:
        assert learn(s, "Hana@Example.com", "UHANA", NOW) is True
        assert learn(s, "hana@example.com", "UHANA", NOW + timedelta(hours=1)) is False  # still fresh
        assert learn(s, "stranger@example.com", "USTRANGER", NOW) is False
        assert learn(s, None, "UNOEMAIL", NOW) is False
        assert mapped_users(s) == {"hana@example.com": "UHANA"}
