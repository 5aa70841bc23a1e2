"""Every KPI against values computed by hand on a small, fixed history (see the table in each test)."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from digest.kpi import compute, last_full_month, months_back
from ingest import ingest_accounts, records
from storage import Database
from tests.clocks import FakeClock

AS_OF = date(2026, 11, 23)  # month: October 2026; a year before it ends 2025-10-31


def snapshot(db: Database, as_of: date, *rows: tuple[Any, ...]) -> None:
    """rows: (account_id, status, mrr, currency[, contract_start[, churned_on[, csm_email, segment]]])."""
    head = "account_id,name,plan,mrr,seats,contract_start,renewal_date,status,currency,churned_on,csm_email,"
    head += "segment"
    lines = []
    for a, status, mrr, cur, *rest in rows:
        start, churned, csm, segment = (*rest, *[""] * (4 - len(rest)))
        lines.append(
            f"{a},Acct {a},Pro,{mrr},10,{start or '2025-01-01'},2027-12-31,{status},{cur},"
            f"{churned},{csm},{segment}\n"
        )
    text = head + "\n" + "".join(lines)
    with db.session() as s:
        ingest_accounts(s, records(io.StringIO(text), "csv"), as_of=as_of, now=FakeClock()())


def history(db: Database) -> None:
    snapshot(
        db,
        date(2025, 10, 31),
        ("A", "active", 100_000, "JPY"),
        ("B", "active", 200_000, "JPY"),
        ("C", "active", 1_000, "USD"),
    )
    snapshot(
        db,
        date(2026, 9, 30),
        ("A", "active", 100_000, "JPY"),
        ("B", "active", 200_000, "JPY"),
        ("C", "active", 1_000, "USD"),
        ("D", "active", 50_000, "JPY"),
        ("E", "churned", 30_000, "JPY"),
    )
    snapshot(
        db,
        date(2026, 10, 31),
        ("A", "active", 120_000, "JPY"),
        ("B", "churned", 200_000, "JPY"),
        ("C", "active", 800, "USD"),
        ("D", "active", 50_000, "JPY"),
        ("E", "active", 30_000, "JPY"),  # churned before, returned in October
        ("F", "active", 40_000, "JPY", "2026-10-12"),
    )  # new in October
    snapshot(db, date(2026, 11, 20), ("A", "active", 150_000, "JPY"))  # upsell this week


def test_periods() -> None:
    m = last_full_month(AS_OF)
    assert (m.start, m.end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert last_full_month(date(2026, 1, 5)).start == date(2025, 12, 1)
    assert months_back(date(2026, 10, 31), 12) == date(2025, 10, 31)
    assert months_back(date(2026, 3, 31), 1) == date(2026, 2, 28)


def test_kpis_match_hand_computed_values(db: Database) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from storage.models import Account, UpsellOpportunity

    history(db)
    with db.session() as s:
        a = s.scalars(select(Account.id).where(Account.external_id == "A")).one()
        for when in (datetime(2026, 11, 18, 3, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)):
            s.add(UpsellOpportunity(account_id=a, handed_by="UCS", reasons=[], created_at=when))
    with db.session() as s:
        k = compute(s, AS_OF, base_currency="JPY", fx_rates={"USD": 150})
    # start of October (state on Sep 30): A B C D active = 4; end: A C D E F = 5; churned B; new E F
    assert (k["customers_at_start"], k["customers_at_end"], k["churned_customers"], k["new_customers"]) == (
        4,
        5,
        1,
        2,
    )
    assert k["churn_rate"] == 25.0  # 1 / 4
    assert k["customer_retention_rate"] == 75.0  # (5 - 2) / 4: the returning E counts as acquired
    # GRR: start MRR A 100k + B 200k + C 1,000 USD x 150 + D 50k = 500k; kept 100k + 0 + 120k + 50k = 270k
    assert k["grr"] == 54.0
    # NRR: customers a year ago A B C: 450k then; now A 120k + B 0 + C 120k = 240k
    assert k["nrr"] == 53.3
    assert (k["upsell_count"], k["upsell_mrr"]) == (1, 30000.0)  # A: 120k -> 150k on Nov 20
    assert k["upsell_opportunities"] == 1  # handed to IS on Nov 18; the one on Nov 10 is last week
    assert k["onboarding_completion_rate"] is None
    assert k["denominators"]["churn_rate"] == (
        "customers at the start of 2026-10 (4); churn dates from the snapshots (no churned_on in the data)"
    )
    assert k["denominator_facts"]["churn_rate"]["dates"] == "snapshots"
    assert "500,000 JPY" in k["denominators"]["grr"]


WEEKLY_AS_OF = date(2026, 4, 6)  # month: March 2026


def weekly_book(db: Database) -> None:
    """Weekly accounts files. X churns on March 28 and first shows as churned in the April 2 file; N
    signs on March 30 and is first listed on April 2. NPS answers: five in March, one either side."""
    alive = [
        ("A", "active", 100_000, "JPY", "", "", "alice@example.com", "enterprise"),
        ("B", "active", 100_000, "JPY", "", "", "alice@example.com", "smb"),
        ("C", "active", 50_000, "JPY", "", "", "bob@example.com", "smb"),
        ("D", "active", 50_000, "JPY", "", "", "bob@example.com", "smb"),
    ]
    x = ("X", "active", 200_000, "JPY", "", "", "alice@example.com", "enterprise")
    for day in (date(2026, 1, 29), date(2026, 2, 26), *(date(2026, 3, d) for d in (5, 12, 19, 26))):
        snapshot(db, day, *alive, x)
    snapshot(
        db,
        date(2026, 4, 2),
        *alive,
        ("X", "churned", 200_000, "JPY", "", "2026-03-28", "alice@example.com", "enterprise"),
        ("N", "active", 30_000, "JPY", "2026-03-30", "", "bob@example.com", "smb"),
    )
    from sqlalchemy import select

    from storage.models import Account, Signal

    with db.session() as s:
        a = s.scalars(select(Account.id).where(Account.external_id == "A")).one()
        answers = [(date(2026, 2, 27), 0), (date(2026, 4, 1), 0)]  # outside March: not counted
        answers += [(date(2026, 3, d), v) for d, v in ((2, 10), (9, 10), (16, 9), (23, 7), (30, 2))]
        for day, value in answers:
            s.add(Signal(day=day, account_id=a, metric="nps", value=value))


def test_a_churn_dated_in_march_counts_in_march_though_the_april_file_first_shows_it(db: Database) -> None:
    weekly_book(db)
    with db.session() as s:
        k = compute(s, WEEKLY_AS_OF, gross_margin_pct=80)
    # start of March (Feb 28): A B C D X = 5; end (Mar 31): A B C D and N (contract_start Mar 30) = 5
    assert (k["customers_at_start"], k["customers_at_end"], k["churned_customers"], k["new_customers"]) == (
        5,
        5,
        1,
        1,
    )
    assert k["churn_rate"] == 20.0  # 1 / 5 (by the snapshots alone: 0 / 5, X would fall into April)
    assert k["customer_retention_rate"] == 80.0  # (5 - 1) / 5
    assert k["churn_dates_from"] == {"churned_on": 1} and k["start_dates_from"] == {"contract_start": 1}
    assert k["denominators"]["churn_rate"].endswith("; churn dates from churned_on")
    assert k["denominator_facts"]["churn_rate"] == {
        "code": "customers_at_start",
        "month": "2026-03",
        "count": 5,
        "dates": "churned_on",
        "from_churned_on": 1,
    }
    # MRR on Mar 31: A 100k + B 100k + C 50k + D 50k + N 30k = 330k; churned: X's 200k at the start
    assert (k["mrr"], k["arr"], k["churned_mrr"]) == (330_000.0, 3_960_000.0, 200_000.0)
    # GRR: 300k of 500k kept; LTV: ARPA 330k / 5 = 66k, x 80% / 20% churn = 264k
    assert k["grr"] == 60.0 and k["arpa"] == 66_000 and k["ltv"] == 264_000
    # NPS: March answers 10 10 9 7 2: 3 promoters, 1 detractor of 5 = 60% - 20% = 40
    assert (k["nps"], k["nps_answers"], k["nps_promoters"], k["nps_detractors"]) == (40.0, 5, 3, 1)
    assert k["by_csm"] == [
        {
            "csm": "alice@example.com",
            "customers_at_start": 3,
            "customers_at_end": 2,
            "churned_customers": 1,
            "churn_rate": 33.3,
            "mrr": 200_000.0,
            "churned_mrr": 200_000.0,
        },
        {
            "csm": "bob@example.com",
            "customers_at_start": 2,
            "customers_at_end": 3,
            "churned_customers": 0,
            "churn_rate": 0.0,
            "mrr": 130_000.0,
            "churned_mrr": 0.0,
        },
    ]
    assert [(r["segment"], r["customers_at_end"], r["churn_rate"], r["mrr"]) for r in k["by_segment"]] == [
        ("smb", 4, 0.0, 230_000.0),
        ("enterprise", 1, 50.0, 100_000.0),
    ]


def test_ltv_is_undefined_without_churn_or_margin_and_says_why(db: Database) -> None:
    weekly_book(db)
    with db.session() as s:
        february = compute(s, date(2026, 3, 2), gross_margin_pct=80)  # nobody churned in February
        no_margin = compute(s, WEEKLY_AS_OF)
    assert february["churn_rate"] == 0.0 and february["ltv"] is None
    assert february["denominator_facts"]["ltv"] == {"code": "ltv_no_churn", "month": "2026-02"}
    assert no_margin["ltv"] is None and "gross_margin_pct" in no_margin["denominators"]["ltv"]


def test_a_file_that_did_not_list_an_account_limits_how_far_back_contract_start_reaches(
    db: Database,
) -> None:
    snapshot(db, date(2026, 9, 30), ("A", "active", 100_000, "JPY"))
    snapshot(db, date(2026, 10, 31), ("A", "active", 100_000, "JPY"), ("F", "active", 1, "JPY", "2025-01-01"))
    with db.session() as s:
        k = compute(s, AS_OF)
    # F's contract says 2025, but the Sep 30 file did not list it: new in October, by the snapshots
    assert (k["customers_at_start"], k["new_customers"]) == (1, 1)
    assert k["start_dates_from"] == {"snapshots": 1}


def test_too_little_history_says_so_instead_of_a_number(db: Database) -> None:
    snapshot(db, date(2026, 10, 15), ("A", "active", 100_000, "JPY", "2026-10-10"))  # nothing before October
    with db.session() as s:
        k = compute(s, AS_OF)
    assert k["churn_rate"] is None and k["customer_retention_rate"] is None and k["grr"] is None
    assert k["nrr"] is None and k["denominators"]["nrr"].startswith("not enough data")


def test_contract_start_dates_who_the_customers_were_but_not_what_they_paid(db: Database) -> None:
    """A first accounts file in November with contract starts in 2025: October's customers are known
    (churn and retention count them), their MRR then is not (GRR, churned MRR and last month's MRR say
    "not enough data" rather than copy today's MRR back)."""
    snapshot(
        db,
        date(2026, 11, 2),
        ("A", "active", 100_000, "JPY", "2025-06-01"),
        ("B", "churned", 50_000, "JPY", "2025-06-01", "2026-10-20"),
    )
    with db.session() as s:
        k = compute(s, AS_OF)  # October 2026
    assert (k["customers_at_start"], k["churned_customers"], k["churn_rate"]) == (2, 1, 50.0)
    assert k["grr"] is None and k["churned_mrr"] is None and k["nrr"] is None
    assert k["mrr"] == 100_000.0  # October's end: the first file came within a week of it


def test_no_customers_at_period_start_gives_no_rate(db: Database) -> None:
    snapshot(db, date(2026, 9, 30), ("A", "churned", 100_000, "JPY"))
    snapshot(db, date(2026, 10, 31), ("A", "active", 100_000, "JPY"))
    with db.session() as s:
        k = compute(s, AS_OF)
    assert k["customers_at_start"] == 0 and k["churn_rate"] is None and k["customer_retention_rate"] is None


def test_a_currency_without_a_rate_is_left_out_and_counted(db: Database) -> None:
    snapshot(db, date(2026, 9, 30), ("A", "active", 100_000, "JPY"), ("G", "active", 500, "GBP"))
    snapshot(db, date(2026, 10, 31), ("A", "active", 100_000, "JPY"), ("G", "active", 400, "GBP"))
    with db.session() as s:
        k = compute(s, AS_OF, fx_rates={})
    assert k["grr"] == 100.0 and k["excluded_accounts_without_fx_rate"] == 1


def test_cli_prints_the_figures_as_json(tmp_path) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite:///{tmp_path}/digest.db"
    db = Database(url)
    db.upgrade()
    history(db)
    db.dispose()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}, "DATABASE_URL": url}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "app.py", "digest", "--as-of", "2026-11-23", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert {
        "churn_rate",
        "customer_retention_rate",
        "grr",
        "nrr",
        "onboarding_completion_rate",
        "upsell_count",
        "upsell_mrr",
        "ltv",
        "nps",
        "arr",
        "mrr",
        "churned_mrr",
        "by_csm",
        "by_segment",
    } <= set(figures)
    assert (figures["churn_rate"], figures["grr"], figures["upsell_count"]) == (25.0, 54.0, 1)
    text = subprocess.run(
        [sys.executable, "app.py", "digest", "--as-of", "2026-11-23"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    flat = " ".join(text.stdout.split())
    # each figure shares a line with its change (the digest was about 100 lines, one per figure or change)
    assert "Churn rate: 25.0%  ▲25pt vs last month" in text.stdout and len(text.stdout.splitlines()) < 60
    chart = tmp_path / "chart.png"
    dry = subprocess.run(
        [sys.executable, "app.py", "digest", "--as-of", "2026-11-23", "--dry-run", "--chart", str(chart)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert chart.read_bytes().startswith(b"\x89PNG") and f"chart written to {chart}" in dry.stdout
    assert "Churn rate: 25.0%" in flat and "customers at the start of October 2026 (4)" in flat
