"""JSON arrays and accounts files are read in pieces, like signals: memory holds one item or one batch."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from ingest import IngestError, ingest_accounts, records
from storage import Database
from storage.models import Account, AccountSnapshot
from tests.clocks import FakeClock
from tests.ingest.test_ingest import count

HEAD = "account_id,name,plan,mrr,seats,contract_start,renewal_date\n"


class Reads(io.StringIO):
    """A text stream that remembers the largest read asked of it (-1: the whole rest)."""

    largest = 0

    def read(self, size: int | None = -1) -> str:  # type: ignore[override]
        self.largest = -1 if size is None or size < 0 else max(self.largest, size)
        return super().read(size)


def test_a_json_array_is_read_in_chunks_not_whole() -> None:
    items = [{"account_id": f"A{n}", "value": n} for n in range(20_000)]
    stream = Reads(json.dumps(items))
    got = [rec for _, rec, _ in records(stream, "json")]
    assert got == items
    assert 0 < stream.largest < len(stream.getvalue()) // 4


def accounts_file(n: int, start: int = 0) -> str:
    return HEAD + "".join(
        f"X{i},Customer {i},Pro,100,5,2026-01-01,2027-01-01\n" for i in range(start, start + n)
    )


def test_an_accounts_file_is_written_in_batches_that_leave_the_session(db: Database, monkeypatch) -> None:
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 50)
    with db.session() as s:
        result = ingest_accounts(s, records(io.StringIO(accounts_file(600)), "csv"), as_of=date(2026, 11, 1),
                                 now=FakeClock()())  # fmt: skip
        assert result.created == 600
        assert len(s.identity_map) <= 100  # one batch at most, not the whole file
    assert count(db, Account) == 600 and count(db, AccountSnapshot) == 600
    with db.session() as s:  # again, a day later: every account updated, one more snapshot each
        again = ingest_accounts(s, records(io.StringIO(accounts_file(600)), "csv"), as_of=date(2026, 11, 2),
                                now=FakeClock()())  # fmt: skip
    assert (again.created, again.updated) == (0, 600) and count(db, AccountSnapshot) == 1200


def test_a_name_taken_in_an_earlier_batch_refuses_the_file_and_leaves_nothing(
    db: Database, monkeypatch
) -> None:
    monkeypatch.setattr("ingest.accounts.ACCOUNT_BATCH", 10)
    text = accounts_file(30) + "Y1,Customer 3,Pro,100,5,2026-01-01,2027-01-01\n"
    with pytest.raises(IngestError) as err, db.session() as s:
        ingest_accounts(s, records(io.StringIO(text), "csv"), as_of=date(2026, 11, 1), now=FakeClock()())
    assert [(p.line, p.message) for p in err.value.problems] == [
        (32, "name 'Customer 3' is already used by account 'X3'")
    ]
    assert count(db, Account) == 0 and count(db, AccountSnapshot) == 0
