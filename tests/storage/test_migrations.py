from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from storage import Database
from storage.models import Account, Base
from tests.conftest import PG_URL, fresh_pg_database


def _fresh(kind: str, tmp_path) -> Database:
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'm.db'}")
    if not PG_URL:
        pytest.skip("PostgreSQL not configured")
    return fresh_pg_database("baton_migrations")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_apply_on_a_fresh_database_and_roll_back(kind: str, tmp_path) -> None:
    db = _fresh(kind, tmp_path)
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= {t.name for t in Base.metadata.sorted_tables}
    db.downgrade("base")
    assert not set(inspect(db.engine).get_table_names()) & {t.name for t in Base.metadata.sorted_tables}
    db.upgrade()  # and forward again: the downgrade left nothing behind that blocks it
    db.dispose()


def test_money_and_times_round_trip_exactly(db: Database) -> None:
    jst = timezone(timedelta(hours=9))
    made = datetime(2026, 4, 1, 9, 0, tzinfo=jst)
    with db.session() as s:
        s.add(
            Account(
                name="Acme",
                name_key="acme",
                mrr=Decimal("1234567.89"),
                currency="JPY",
                contract_start=date(2026, 4, 1),
                created_at=made,
                updated_at=made,
            )
        )
    with db.session() as s:
        acct = s.scalars(select(Account)).one()
    assert acct.mrr == Decimal("1234567.89")
    assert acct.created_at == made and acct.created_at.tzinfo is not None
    assert acct.created_at.astimezone(UTC).hour == 0


def test_naive_datetimes_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="naive"), db.session() as s:
        now = datetime(2026, 1, 1)
        s.add(Account(name="X", name_key="x", created_at=now, updated_at=now))
        s.flush()


def test_ping(db: Database) -> None:
    assert db.ping()


def test_run_retries_when_another_request_changed_the_row_first(db: Database) -> None:
    """Optimistic locking: the loser of a race is re-run on fresh data instead of failing."""
    from handoff import service
    from handoff.service import Actor
    from settings import Rules
    from tests.clocks import FakeClock
    from tests.handoff.test_checklist import valid_form

    clock = FakeClock()
    with db.session() as s:
        hid = service.create(s, form=valid_form(), actor=Actor("U1"), clock=clock, rules=Rules.load(None)).id
    attempts: list[int] = []

    def work(s):
        h = service.get(s, hid)
        attempts.append(h.version)
        if len(attempts) == 1:  # someone else saves the same row between our read and our write
            with db.session() as other:
                service.get(other, hid).seats = 99
        h.addons = "SSO"
        s.flush()
        return h.version

    assert db.run(work) == attempts[-1] + 1
    assert len(attempts) == 2
    with db.session() as s:
        h = service.get(s, hid)
        assert (h.seats, h.addons) == (99, "SSO")


def test_the_migrations_build_exactly_the_models(tmp_path) -> None:
    """A model changed without a migration (or the reverse) shows up here, not in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = _fresh("sqlite", tmp_path)
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []
