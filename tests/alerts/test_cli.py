"""`app.py ingest`: every refusal is one line with the fix, never a traceback; the help lists columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

import app
from alerts.cli import ingest_file
from storage import Database
from storage.models import Account, Signal
from tests.alerts.test_ingest import ACCOUNTS
from tests.clocks import FakeClock

JP_ACCOUNTS = ACCOUNTS.replace("Acme Corp", "株式会社ミライ物流").replace(
    "120000", '"￥120,000"'
)  # full-width: U+00A5 has no CP932 byte


def run(db: Database, path: Path, kind: str = "accounts", **kw) -> int:  # type: ignore[no-untyped-def]
    return ingest_file(db, kind, path, as_of=FakeClock()().date(), fmt=None, clock=FakeClock(), **kw)


def accounts(db: Database) -> list[str]:
    with db.session() as s:
        return sorted(s.scalars(select(Account.name)))


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_cp932_file_from_excel_loads(db: Database, tmp_path: Path, capsys) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(JP_ACCOUNTS.replace("\n", "\r\n").encode("cp932"))
    assert run(db, path) == 0
    assert accounts(db) == ["Globex", "株式会社ミライ物流"]
    assert "2 accounts" in capsys.readouterr().out


def test_a_missing_path_or_a_directory_is_one_line(db: Database, tmp_path: Path, capsys) -> None:
    assert run(db, tmp_path / "nope.csv") == 2
    assert "no such file" in one_line(capsys.readouterr().err)
    assert run(db, tmp_path) == 2
    assert "is a directory" in one_line(capsys.readouterr().err)


def test_an_undecodable_file_names_its_line_and_the_fix(db: Database, tmp_path: Path, capsys) -> None:
    path = tmp_path / "accounts.csv"
    body = ACCOUNTS + "".join(f"B{i},Name {i},Pro,1,1,2026-01-01,2027-01-01,,,,\n" for i in range(3000))
    tail = "Z1,株式会社ミライ物流,Pro,1,1,2026-01-01,2027-01-01,,,,\n"
    path.write_bytes(body.encode() + tail.encode("cp932"))  # ASCII for the first 64 KB, then CP932
    assert run(db, path) == 2
    err = one_line(capsys.readouterr().err)
    fix = "save it as UTF-8 (Excel: CSV UTF-8) or pass --encoding cp932"
    assert f"not valid UTF-8 text (line {body.count(chr(10)) + 1}); {fix}" in err
    assert accounts(db) == []  # nothing written
    assert run(db, path, encoding="cp932") == 0  # the fix it names works
    assert "株式会社ミライ物流" in accounts(db)


def test_an_explicit_encoding_is_used(db: Database, tmp_path: Path, capsys) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(JP_ACCOUNTS.encode("euc_jp"))
    assert run(db, path, encoding="euc_jp") == 0
    assert "株式会社ミライ物流" in accounts(db)
    path.write_bytes(JP_ACCOUNTS.encode("utf-8"))
    assert run(db, path, encoding="cp932") == 2
    assert "check --encoding cp932" in one_line(capsys.readouterr().err)


def test_progress_shows_on_request_and_the_result_is_the_same(
    db: Database, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("BATON_PROGRESS", "1")
    (tmp_path / "a.csv").write_text(ACCOUNTS)
    assert run(db, tmp_path / "a.csv") == 0
    rows = "".join(f"A1,2026-10-{d:02d},m{i},1\n" for d in range(1, 31) for i in range(300))
    (tmp_path / "s.csv").write_text("account_id,date,metric,value\n" + rows)
    monkeypatch.setattr("alerts.ingest.BATCH", 1000)
    assert run(db, tmp_path / "s.csv", kind="signals") == 0
    err = capsys.readouterr().err
    assert "100%" in err and "9,000 rows" in err
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Signal)) == 9000


def test_progress_is_silent_off_a_terminal(db: Database, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("BATON_PROGRESS", raising=False)
    (tmp_path / "a.csv").write_text(ACCOUNTS)
    assert run(db, tmp_path / "a.csv") == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["ingest accounts a.csv", "scan", "digest", "remind", "health"])
def test_a_bad_as_of_names_the_format(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        app.main([*command.split(), "--as-of", "30/11/2026"])
    assert exc.value.code == 2
    assert "argument --as-of: '30/11/2026' is not a date: use YYYY-MM-DD" in capsys.readouterr().err


def test_an_unknown_encoding_is_refused_by_name(capsys) -> None:
    with pytest.raises(SystemExit):
        app.main(["ingest", "accounts", "a.csv", "--encoding", "klingon"])
    assert "'klingon' is not an encoding Baton knows: use utf-8 or cp932" in capsys.readouterr().err


def test_ingest_help_lists_every_kind_with_its_columns_and_an_example(capsys) -> None:
    with pytest.raises(SystemExit):
        app.main(["ingest", "--help"])
    out = capsys.readouterr().out
    for kind in ("accounts:", "signals:", "metrics:", "touches:"):
        assert f"\n{kind}\n  required:" in out
    assert "optional: csm_email, segment, currency, status, churned_on, touch_tier" in out
    assert out.count("  example:\n") == 4 and "A1,2026-11-30,active_users,42" in out
