"""`app.py ingest`: every refusal is one line with the fix, never a traceback; the help lists columns."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from sqlalchemy import func, select

import app
from alerts.cli import ingest_file
from storage import Database
from storage.models import Account, Signal
from tests.clocks import FakeClock
from tests.ingest.test_ingest import ACCOUNTS

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
    monkeypatch.setattr("ingest.writers.BATCH", 1000)
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


# --- scan and health: terminal lines in BATON_LOCALE, progress on a terminal only -----------------------


def _book(db: Database) -> None:
    from tests.alerts.test_scan import _late_book

    _late_book(db)


def test_scan_and_health_read_in_english(db: Database) -> None:
    from alerts.cli import print_health, run_scan
    from cli import words
    from tests.alerts.test_scan import DEC2, RULES

    _book(db)
    out = StringIO()
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=False, dry_run=True, out=out, tr=words("en"))
    text = out.getvalue()
    assert "Scan as of 2026-12-02, usage data through 2026-11-30: 4 active accounts; would raise 2" in text
    assert "churn risk High   Account STOPPED (STOPPED)  score 34" in text
    assert "      - Health score 34 (red)" in text
    print_health(db, RULES, as_of=DEC2, as_json=False, out=(out := StringIO()), tr=words("en"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "Health as of 2026-12-02, usage data through 2026-11-30"
    assert any(line.startswith("  34 red     Account STOPPED (STOPPED) [own data through") for line in lines)


def test_scan_and_health_read_in_japanese(db: Database) -> None:
    from alerts.cli import print_health, run_scan
    from cli import words
    from tests.alerts.test_scan import DEC2, RULES

    _book(db)
    out = StringIO()
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=False, dry_run=False, out=out, tr=words("ja"))
    text = out.getvalue()
    assert text.startswith(
        "2026年12月2日時点のスキャン（利用データ：2026年11月30日まで）：アクティブな顧客4社、アラート2件を発行しました。\n"
    )
    assert "利用データは2026年11月30日まで（2日前）です。" in text
    assert "【新規】解約リスク（重要度：高）Account STOPPED（STOPPED）、スコア：34" in text
    assert "・ヘルススコア：34（危険）" in text and "直近7日間のアクティブユーザー数" in text
    assert "2026-" not in text and "churn" not in text  # no ISO dates or codes in Japanese sentences
    run_scan(
        db,
        RULES,
        as_of=DEC2,
        clock=FakeClock(),
        as_json=False,
        dry_run=True,
        out=(again := StringIO()),
        tr=words("ja"),
    )
    assert "（通知なし：変化なし2件）" in again.getvalue()
    print_health(db, RULES, as_of=DEC2, as_json=False, out=(out := StringIO()), tr=words("ja"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "2026年12月2日時点のヘルススコア（利用データ：2026年11月30日まで）"
    stopped = next(line for line in lines if "STOPPED" in line)
    assert stopped.startswith(
        "  34 【危険】Account STOPPED（STOPPED）（この顧客のデータは2026年11月20日まで）："
    )
    assert "10日間、利用がありません" in stopped and "2026-" not in out.getvalue()


def test_a_late_book_warns_in_japanese_on_stderr_beside_the_json(db: Database) -> None:
    from alerts.cli import run_scan
    from cli import words
    from tests.alerts.test_scan import NOV30, RULES

    _book(db)
    out, err = StringIO(), StringIO()
    late = NOV30 + timedelta(days=10)
    run_scan(
        db, RULES, as_of=late, clock=FakeClock(), as_json=True, dry_run=True, out=out, err=err, tr=words("ja")
    )
    assert json.loads(out.getvalue())[0]["kind"]  # the JSON stays codes
    assert err.getvalue().startswith(
        "警告：利用データが10日前から更新されていません（シグナルの最新日：2026年11月30日"
    )


def test_scan_progress_is_drawn_on_request_and_never_off_a_terminal(db: Database, monkeypatch) -> None:
    from alerts.cli import run_scan
    from tests.alerts.test_scan import DEC2, RULES

    _book(db)
    monkeypatch.delenv("BATON_PROGRESS", raising=False)
    err = StringIO()  # not a terminal
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=True, dry_run=True, out=StringIO(), err=err)
    assert "accounts" not in err.getvalue() and "%" not in err.getvalue()
    monkeypatch.setenv("BATON_PROGRESS", "1")
    run_scan(db, RULES, as_of=DEC2, clock=FakeClock(), as_json=True, dry_run=True, out=StringIO(), err=err)
    assert "100%" in err.getvalue() and "4/4" in err.getvalue() and "accounts" in err.getvalue()


def test_ingest_says_what_it_stored_in_japanese(db: Database, tmp_path: Path, capsys) -> None:
    from cli import words

    path = tmp_path / "accounts.csv"
    path.write_text(JP_ACCOUNTS, encoding="utf-8")
    assert run(db, path, tr=words("ja")) == 0
    out = capsys.readouterr().out
    assert "：2026年" in out
    assert "時点の顧客2社を取り込みました（新規2社、更新0社、引き継ぎと紐付け0社）。" in out
