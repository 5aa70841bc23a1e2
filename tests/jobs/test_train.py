"""The daily scan trains the model when none exists or it is a week older than the data, once across
instances (the job ledger), and then alerts on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from jobs.scheduler import TRAIN, Jobs
from model import store
from model.service import train_if_stale
from settings import Rules, Settings
from storage import Database
from storage.models import ChurnModel, JobRun
from tests.clocks import FakeClock
from tests.concurrency import at_once
from tests.model.book import NOW, build

SETTINGS = Settings(rules=Rules.load(None))


def _morning(day) -> FakeClock:  # 07:00 in Tokyo on the day after the book's last day
    return FakeClock(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=22))


def test_two_racing_scans_train_a_missing_model_once(db: Database) -> None:
    book = build(db)
    clock = _morning(book.end)
    instances = [Jobs(db, SETTINGS, clock, instance=f"node-{i}", train_backtest=False) for i in range(2)]
    at_once([j.scan_job for j in instances], timeout=60)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChurnModel).where(ChurnModel.kind == "churn")) == 1
        assert s.scalar(select(func.count()).select_from(JobRun).where(JobRun.job_id == TRAIN)) == 1
        assert store.latest_row(s, "churn").data_through == book.end


def test_a_current_model_is_kept_and_a_stale_one_retrained(db: Database) -> None:
    book = build(db)
    rules = SETTINGS.rules
    with db.session() as s:
        first = train_if_stale(s, book.end - timedelta(days=7), rules, now=NOW, backtest=False)
        s.commit()
    with db.session() as s:
        kept = train_if_stale(s, book.end - timedelta(days=1), rules, now=NOW, backtest=False)
        retrained = train_if_stale(s, book.end, rules, now=NOW, backtest=False)
        s.commit()
        versions = s.scalars(select(ChurnModel.version).where(ChurnModel.kind == "churn")).all()
    assert (
        first.startswith("trained churn v1")
        and "current" in kept
        and retrained.startswith("trained churn v2")
    )
    assert sorted(versions) == [1, 2]


def test_the_retrain_age_is_the_teams_setting(db: Database) -> None:
    from dataclasses import replace

    book = build(db)
    base = SETTINGS.rules
    monthly = replace(base, alerts=replace(base.alerts, model_retrain_days=28))
    with db.session() as s:
        assert train_if_stale(s, book.end - timedelta(days=7), monthly, now=NOW, backtest=False).startswith(
            "trained"
        )
        s.commit()
    with db.session() as s:
        assert "current" in train_if_stale(s, book.end, monthly, now=NOW, backtest=False)  # 7 < 28 days
        assert train_if_stale(s, book.end, base, now=NOW, backtest=False).startswith("trained churn v2")
