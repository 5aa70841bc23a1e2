"""Hostile and odd files: each gets a reason on its line, on both databases, and nothing is written."""

from __future__ import annotations

import io
from datetime import date

import pytest

from ingest import IngestError, ingest_accounts, ingest_metrics, ingest_signals, records
from storage import Database
from storage.models import Account, Signal
from tests.clocks import FakeClock
from tests.ingest.test_ingest import ACCOUNTS, count, load_accounts

HEAD = "account_id,name,plan,mrr,seats,contract_start,renewal_date,segment,csm_email"
TODAY = date(2026, 11, 23)  # FakeClock's day


def refused(fn) -> dict[int, str]:
    with pytest.raises(IngestError) as err:
        fn()
    return {p.line: p.message for p in err.value.problems}


def account_line(**kw: str) -> str:
    row = dict(
        account_id="A9", name="Nine", plan="Pro", mrr="1", seats="1", contract_start="2026-01-01",
        renewal_date="2027-01-01", segment="", csm_email="",
    )  # fmt: skip
    return ",".join({**row, **kw}.values())


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"seats": "1" + "0" * 20}, "seats"),
        ({"seats": str(2**31)}, "seats"),
        ({"account_id": "A" * 65}, "account_id is longer than 64 characters"),
        ({"plan": "P" * 201}, "plan is longer than 200 characters"),
        ({"segment": "S" * 65}, "segment is longer than 64 characters"),
        ({"csm_email": "a" * 5000 + "@x.example"}, "csm_email"),
        ({"name": "\ufdfa" * 12}, "name is longer than 200 characters once normalized"),
        ({"name": "Nu\x00ll"}, "name contains a NUL character"),
        ({"contract_start": "0001-01-01"}, "contract_start 0001-01-01 is outside"),
        ({"renewal_date": "9999-12-31"}, "renewal_date 9999-12-31 is outside"),
    ],
)
def test_account_values_the_columns_cannot_hold_are_refused(db: Database, fields, reason) -> None:
    text = f"{HEAD}\n{account_line(**fields)}\n"
    assert reason in refused(lambda: load_accounts(db, text))[2]
    assert count(db, Account) == 0


def test_two_account_ids_sharing_64_characters_stay_two_accounts(db: Database) -> None:
    ten = account_line(account_id="X" * 64 + "Y", name="Ten")
    text = f"{HEAD}\n{account_line(account_id='X' * 64)}\n{ten}\n"
    assert "longer than 64" in refused(lambda: load_accounts(db, text))[3]


def test_an_as_of_far_from_today_is_refused(db: Database) -> None:
    assert "as_of 9999-12-31 is outside" in refused(lambda: load_accounts(db, as_of=date(9999, 12, 31)))[0]
    assert "as_of 1999-01-01" in refused(lambda: load_accounts(db, as_of=date(1999, 1, 1)))[0]
    assert count(db, Account) == 0


def test_a_header_with_no_known_column_is_refused_not_answered_with_0_rows(db: Database) -> None:
    assert "header names none of" in refused(lambda: load_accounts(db, "foo,bar\n"))[1]
    with db.session() as s:
        assert (
            "header names none of"
            in refused(lambda: ingest_metrics(s, records(io.StringIO("when,what\n"), "csv")))[1]
        )


def signals(db: Database, text: str, fmt: str = "csv") -> None:
    with db.session() as s:
        ingest_signals(s, records(io.StringIO(text), fmt), today=TODAY)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("A1,2026-11-20,active_users,-3", "must not be negative"),
        ("A1,2026-11-20,nps,11", "nps must be between 0 and 10"),
        ("A1,2026-11-20,nps,-1", "nps must be between 0 and 10"),
        ("A1,2026-11-20,logins,1e308", "between 0 and 1e12"),
        ("A1,2026-11-20,logins,inf", "not a finite number"),
        ("A1,2026-11-20,logins,nan", "not a finite number"),
        ("A1,0001-01-01,logins,1", "outside the plausible range"),
        ("A1,9999-12-31,logins,1", "outside the plausible range"),
    ],
)
def test_implausible_signal_values_are_refused(db: Database, row: str, reason: str) -> None:
    load_accounts(db)
    assert reason in refused(lambda: signals(db, f"account_id,date,metric,value\n{row}\n"))[2]
    assert count(db, Signal) == 0


def test_json_true_is_not_a_value_and_huge_or_deep_json_is_a_line_error(db: Database) -> None:
    load_accounts(db)
    row = '{"account_id": "A1", "date": "2026-11-20", "metric": "logins", "value": %s}'
    assert "not a number" in refused(lambda: signals(db, row % "true", "json"))[1]
    assert "4,300 digits" in refused(lambda: signals(db, "[" + row % ("9" * 5000) + "]", "json"))[1]
    assert "too large" in refused(lambda: signals(db, row % ("9" * 400), "json"))[1]
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested too deeply" in refused(lambda: signals(db, f"[{row % 1}, {deep}]", "json"))[2]
    assert "nested too deeply" in refused(lambda: signals(db, deep, "json"))[1]
    assert count(db, Signal) == 0


def test_a_row_repeated_in_one_signals_file_is_refused(db: Database, monkeypatch) -> None:
    load_accounts(db)
    head = "account_id,date,metric,value\n"
    same_batch = head + "A1,2026-11-20,logins,3\nA2,2026-11-20,logins,4\nA1,2026-11-20,logins,5\n"
    assert "appears again (first on line 2)" in refused(lambda: signals(db, same_batch))[4]
    monkeypatch.setattr("ingest.writers.BATCH", 2)  # the repeat lands in a later batch than the first
    assert "appears again (first on line 2)" in refused(lambda: signals(db, same_batch))[4]
    assert count(db, Signal) == 0
    signals(db, head + "A1,2026-11-20,logins,3\nA1,2026-11-21,logins,3\nA1,2026-11-20,active_users,3\n")
    assert count(db, Signal) == 3


def test_a_csv_cell_over_the_field_limit_is_a_line_error(db: Database) -> None:
    load_accounts(db)
    text = (
        'account_id,date,metric,value\nA1,2026-11-20,logins,3\nA1,2026-11-21,logins,"' + "x" * 200_000 + '"\n'
    )
    assert "longer than 131,072 characters" in refused(lambda: signals(db, text))[3]


def test_account_names_with_invisible_characters_are_the_same_account(db: Database) -> None:
    load_accounts(db, ACCOUNTS)
    text = f"{HEAD}\nA9,Acme\u200b Corp\u202e,Pro,1,1,2026-01-01,2027-01-01,,\n"
    assert "already used by account 'A1'" in refused(lambda: load_accounts(db, text))[2]
    with db.session() as s:
        ingest_accounts(
            s, records(io.StringIO(f"{HEAD}\nA9,Zw\u200bCorp,Pro,1,1,2026-01-01,2027-01-01,,\n"), "csv"),
            as_of=date(2026, 11, 1), now=FakeClock()(),
        )  # fmt: skip
    with db.session() as s:
        assert s.query(Account).filter_by(external_id="A9").one().name == "ZwCorp"


def test_every_repeat_is_counted_though_only_the_first_50_are_listed(db: Database, monkeypatch) -> None:
    load_accounts(db)
    monkeypatch.setattr("ingest.writers.BATCH", 60)
    rows = "".join(f"A1,2026-{9 + d // 30:02d}-{1 + d % 30:02d},logins,1\n" for d in range(60))
    with pytest.raises(IngestError) as err:
        signals(db, "account_id,date,metric,value\n" + rows + rows)
    assert err.value.bad == 60 and len(err.value.problems) == 50
    assert err.value.problems[0].line == 62 and "first on line 2" in err.value.problems[0].message
    assert count(db, Signal) == 0
