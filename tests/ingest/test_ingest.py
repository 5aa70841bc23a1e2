"""Ingest: one code path for files, the API and the pull; a bad batch writes nothing."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from handoff import service
from handoff.service import Actor
from ingest import IngestError, ingest_accounts, ingest_signals, records
from settings import Rules
from storage import Database
from storage.models import Account, AccountSnapshot, Signal
from tests.clocks import FakeClock
from tests.concurrency import at_once
from tests.handoff.test_checklist import valid_form

ACCOUNTS = """account_id,name,plan,mrr,seats,contract_start,renewal_date,csm_email,segment,currency,status
A1,Acme Corp,Pro,120000,50,2026-01-01,2027-01-01,csm@x.example,mid,JPY,active
A2,Globex,Enterprise,"900,000",300,2025-06-01,2026-12-31,,ent,JPY,active
"""


def load_accounts(db: Database, text: str = ACCOUNTS, as_of: date = date(2026, 11, 1), fmt: str = "csv"):
    with db.session() as s:
        return ingest_accounts(s, records(io.StringIO(text), fmt), as_of=as_of, now=FakeClock()())


def load_signals(db: Database, text: str, fmt: str = "csv"):
    with db.session() as s:
        return ingest_signals(s, records(io.StringIO(text), fmt))


def count(db: Database, model: type) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_accounts_upsert_by_id_and_keep_history_per_date(db: Database) -> None:
    assert load_accounts(db).created == 2
    changed = ACCOUNTS.replace("A1,Acme Corp,Pro,120000,50", "A1,Acme Corp,Business,150000,60")
    result = load_accounts(db, changed, as_of=date(2026, 12, 1))
    assert (result.created, result.updated) == (0, 2)
    with db.session() as s:
        acme = s.scalars(select(Account).where(Account.external_id == "A1")).one()
        assert (acme.plan, acme.mrr, acme.seats) == ("Business", Decimal("150000"), 60)
        history = s.execute(
            select(AccountSnapshot.as_of, AccountSnapshot.plan, AccountSnapshot.mrr)
            .where(AccountSnapshot.account_id == acme.id)
            .order_by(AccountSnapshot.as_of)
        ).all()
    assert history == [
        (date(2026, 11, 1), "Pro", Decimal("120000")),
        (date(2026, 12, 1), "Business", Decimal("150000")),
    ]


def test_an_account_known_from_a_handoff_is_linked_not_duplicated(db: Database) -> None:
    with db.session() as s:
        service.create(
            s,
            form=valid_form(account_name="ACME corp"),
            actor=Actor("U1"),
            clock=FakeClock(),
            rules=Rules.load(None),
        )
    assert load_accounts(db).linked == 1
    assert count(db, Account) == 2


def test_bad_account_lines_are_all_reported_and_nothing_is_written(db: Database) -> None:
    text = (
        ACCOUNTS + "A3,Bad,Pro,-5,10,2026-01-01,2027-01-01,,,,\nA4,Worse,Pro,10,x,2026-01-01,2025-01-01,,,,\n"
    )
    text += "A1,Acme again,Pro,1,1,2026-01-01,2027-01-01,,,,\nA5,Mail,Pro,1,1,2026-01-01,2027-01-01,nope,,,\n"
    with pytest.raises(IngestError) as exc:
        load_accounts(db, text)
    assert [(p.line, p.message.split(" ")[0]) for p in exc.value.problems] == [
        (4, "mrr"),
        (5, "seats"),
        (6, "account_id"),
        (7, "csm_email"),
    ]
    assert count(db, Account) == 0 and count(db, AccountSnapshot) == 0


def test_touch_tier_column_overrides_the_tier_and_an_empty_cell_keeps_it(db: Database) -> None:
    header, a1, a2 = ACCOUNTS.splitlines()
    load_accounts(db, f"{header},touch_tier\n{a1},HIGH\n{a2},\n")
    with db.session() as s:
        s.scalars(select(Account).where(Account.external_id == "A2")).one().touch_tier = "mid"
    load_accounts(db, f"{header},touch_tier\n{a1},tech\n{a2},\n", as_of=date(2026, 12, 1))
    with db.session() as s:
        tiers = dict(s.execute(select(Account.external_id, Account.touch_tier)).all())
    assert tiers == {"A1": "tech", "A2": "mid"}
    with pytest.raises(IngestError) as exc:
        load_accounts(db, f"{header},touch_tier\n{a1},gold\n")
    assert exc.value.problems[0].line == 2 and "touch_tier 'gold'" in exc.value.problems[0].message


SIGNALS = "account_id,date,metric,value\nA1,2026-11-01,active_users,40\nA2,2026-11-01,active_users,250\n"


def test_signals_upsert_by_account_date_metric(db: Database) -> None:
    load_accounts(db)
    assert load_signals(db, SIGNALS).rows == 2
    load_signals(db, "account_id,date,metric,value\nA1,2026-11-01,active_users,42\n")  # a corrected day
    with db.session() as s:
        values = s.execute(select(Signal.metric, Signal.value).order_by(Signal.account_id)).all()
    assert values == [("active_users", 42.0), ("active_users", 250.0)]


def test_json_lines_and_json_arrays_are_accepted(db: Database) -> None:
    load_accounts(db)
    lines = (
        '{"account_id": "A1", "date": "2026-11-02", "metric": "logins", "value": 7}\n\n'
        '{"account_id": "A2", "date": "2026-11-02", "metric": "logins", "value": 9.5}\n'
    )
    assert load_signals(db, lines, fmt="json").rows == 2
    array = '[{"account_id": "A1", "date": "2026-11-03", "metric": "nps", "value": 9}]'
    assert load_signals(db, array, fmt="json").rows == 1


def test_bad_signal_lines_and_unknown_accounts_refuse_the_whole_batch(db: Database) -> None:
    load_accounts(db)
    text = (
        SIGNALS + "A1,2026-11-02,active_users,abc\nZZ,2026-11-02,logins,1\nA1,2026-11-31,x,1\n"
        "A1,2026-11-02,bad metric!,1\nA1,2026-11-02,logins\nZZ,2026-11-03,logins,2\nA1,2026-11-02,a,nan\n"
    )
    with pytest.raises(IngestError) as exc:
        load_signals(db, text)
    messages = {p.line: p.message for p in exc.value.problems}
    assert messages[4] == "value 'abc' is not a number"
    assert messages[5] == "unknown account_id 'ZZ' (line 5, 9); ingest it with the accounts first"
    assert "not a date" in messages[6] and "metric" in messages[7] and "expected 4 columns" in messages[8]
    assert "finite" in messages[10]
    assert count(db, Signal) == 0  # the two good lines were not kept either


def test_a_large_bad_batch_written_in_several_chunks_leaves_nothing(db: Database, monkeypatch) -> None:
    from ingest import writers

    monkeypatch.setattr(writers, "BATCH", 10)
    load_accounts(db)
    good = "".join(f"A1,2026-10-{d:02d},m{i},1\n" for d in range(1, 31) for i in range(3))
    with pytest.raises(IngestError):
        load_signals(db, "account_id,date,metric,value\n" + good + "A1,2026-10-01,m0,oops\n")
    assert count(db, Signal) == 0


def test_missing_header_or_columns_are_reported() -> None:
    rows = list(records(io.StringIO(""), "csv"))
    assert rows == [(1, None, "empty file: expected a header line")]
    rows = list(records(io.StringIO("account_id,date\nA1\n"), "csv"))
    assert rows[0][2] == "expected 2 columns, found 1"


def test_back_filling_an_older_file_keeps_the_current_account(db: Database) -> None:
    load_accounts(db, as_of=date(2026, 12, 1))
    older = ACCOUNTS.replace("A1,Acme Corp,Pro,120000,50", "A1,Acme Corp,Starter,50000,10")
    load_accounts(db, older, as_of=date(2026, 6, 1))
    with db.session() as s:
        acme = s.scalars(select(Account).where(Account.external_id == "A1")).one()
        assert (acme.plan, acme.seats) == ("Pro", 50)  # today's state stays
        plans = s.execute(
            select(AccountSnapshot.as_of, AccountSnapshot.plan)
            .where(AccountSnapshot.account_id == acme.id)
            .order_by(AccountSnapshot.as_of)
        ).all()
    assert plans == [(date(2026, 6, 1), "Starter"), (date(2026, 12, 1), "Pro")]


def test_nested_json_values_are_a_bad_line_not_a_crash(db: Database) -> None:
    load_accounts(db)
    with pytest.raises(IngestError) as exc:
        load_signals(
            db, '{"account_id": ["A1"], "date": "2026-11-01", "metric": "x", "value": 1}\n', fmt="json"
        )
    assert exc.value.problems[0].message == "account_id must be a plain value, not a list or object"


def test_the_touch_tier_column_does_not_override_an_account_with_a_handoff(db: Database) -> None:
    with db.session() as s:
        service.create(
            s,
            form=valid_form(account_name="Acme Corp", price_amount=Decimal(100)),  # tech touch
            actor=Actor("U1"),
            clock=FakeClock(),
            rules=Rules.load(None),
        )
    header, a1, _ = ACCOUNTS.splitlines()
    load_accounts(db, f"{header},touch_tier\n{a1},high\n")  # linked to the handoff by name
    with db.session() as s:
        assert s.scalars(select(Account.touch_tier).where(Account.external_id == "A1")).one() == "tech"


def test_the_same_touches_sent_twice_at_once_are_recorded_once(db: Database) -> None:
    from ingest import ingest_touches
    from storage.models import Touch

    load_accounts(db)
    body = "account,date,kind\nAcme Corp,2026-11-20,welcome\nGlobex,2026-11-20,welcome\n"

    def send() -> int:
        with db.session() as s:
            rows = records(io.StringIO(body), "csv")
            return ingest_touches(s, rows, clock=FakeClock(), timezone="Asia/Tokyo").rows

    results = at_once([send, send])
    assert sorted(results) == [0, 2]  # the retry waited for the first request, then found its touches
    assert count(db, Touch) == 2


EXCEL_JP = (
    " Account ID ,name,plan,MRR,seats,contract_start,renewal_date,currency,status,churned_on,,\r\n"
    'J1,株式会社ミライ物流,プロ,"\\50,000",５０,2026/1/5,2027/01/04,,active,,,\r\n'
    'J2,山田商事㈱,スタンダード,"80,000円","1,200",２０２６／０４／０１,2027年3月31日,JPY,churned,2026/11/30,,\r\n'
    'U1,Acme Inc,Pro,"$1,200.50",3,2026-02-01,2027-02-01,,active,,,\r\n'
    ",,,,,,,,,,,\r\n"
)


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])  # Excel's CSV, and its CSV UTF-8 (with a BOM)
def test_an_excel_export_from_japan_loads(db: Database, encoding: str) -> None:
    from ingest import text_stream

    # Excel in Japan writes ¥ as byte 0x5C, a backslash to CP932; in UTF-8 it is ¥ itself
    text = EXCEL_JP if encoding == "cp932" else EXCEL_JP.replace("\\50,000", "¥50,000")
    data = text.encode(encoding)
    with db.session() as s:
        rows = records(text_stream(io.BytesIO(data)), "csv")
        assert ingest_accounts(s, rows, as_of=date(2026, 11, 1), now=FakeClock()()).created == 3
    with db.session() as s:
        got = {
            a.external_id: (
                a.name,
                a.mrr,
                a.currency,
                a.seats,
                a.contract_start,
                a.renewal_date,
                a.churned_on,
            )
            for a in s.scalars(select(Account))
        }
    assert got == {
        "J1": ("株式会社ミライ物流", Decimal("50000"), "JPY", 50, date(2026, 1, 5), date(2027, 1, 4), None),
        "J2": (
            "山田商事㈱",
            Decimal("80000"),
            "JPY",
            1200,
            date(2026, 4, 1),
            date(2027, 3, 31),
            date(2026, 11, 30),
        ),
        "U1": ("Acme Inc", Decimal("1200.50"), "USD", 3, date(2026, 2, 1), date(2027, 2, 1), None),
    }


def test_an_amount_in_another_currency_than_the_row_and_a_bad_date_are_refused(db: Database) -> None:
    header = ACCOUNTS.splitlines()[0]
    text = (
        f'{header}\nA1,Acme,Pro,"$1,200",1,2026-01-01,2027-01-01,,,JPY,\n'
        "A2,B,Pro,1,1,30/11/2026,2027-01-01,,,,\n"
    )
    with pytest.raises(IngestError) as exc:
        load_accounts(db, text)
    assert [p.message for p in exc.value.problems] == [
        "mrr '$1,200' is not in JPY, the row's currency",
        "contract_start '30/11/2026' is not a date: use YYYY-MM-DD"
        " (2026-11-30, 2026/11/30 or 2026年11月30日)",
    ]


def test_signals_and_metrics_accept_typed_numbers_and_slashed_dates(db: Database) -> None:
    from ingest import ingest_metrics
    from storage.models import CompanyMetric

    load_accounts(db)
    text = (
        'account_id,date,metric,value\r\nA1,2026/11/30,spend,"¥12,000"\r\n'
        "A2,２０２６/１１/３０,seats,４２\r\n"
    )
    assert load_signals(db, text).rows == 2
    with db.session() as s:
        ingest_metrics(s, records(io.StringIO('date,metric,value\n2026/11/30,calls,"1,200"\n'), "csv"))
        assert s.scalars(select(CompanyMetric.value)).all() == [1200.0]
        assert sorted(s.scalars(select(Signal.value))) == [42.0, 12000.0]
