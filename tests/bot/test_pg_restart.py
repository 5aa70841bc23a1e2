"""PostgreSQL restarted under load (the throwaway server scripts/test starts): writes in flight fail
with a database error and leave nothing behind, the next writes after the restart succeed (the pool
pings before use), and the outbox still delivers every message exactly once."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from bot.delivery import LEASE, Delivery
from handoff import service as handoffs
from handoff.service import Actor
from settings import Settings
from storage import Database
from storage.models import Account, Handoff, HandoffEvent, Outbox
from tests.bot.conftest import HANDOFF_CHANNEL, REP
from tests.clocks import FakeClock
from tests.fakeslack import FakeSlack
from tests.handoff.test_checklist import valid_form

pytestmark = pytest.mark.serial  # a restart ends every connection: other workers' tests too

PG_DATA = os.environ.get("BATON_TEST_PG_DATA", "")
PG_CTL = os.environ.get("BATON_TEST_PG_CTL", "")
WRITERS = 3
PREFIX = "Restart "


def restart_postgres() -> None:
    """``pg_ctl restart -m fast``: the server ends every connection (rolling back their transactions)
    and comes back on the same port with the options it was started with."""
    argv = [*shlex.split(PG_CTL), "-D", PG_DATA, "-l", f"{PG_DATA}/log", "-m", "fast", "-w", "restart"]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass
class Load:
    """What the writers saw: each write's name with when it started and ended, split by outcome."""

    ok: dict[str, tuple[float, float]] = field(default_factory=dict)
    failed: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    drain_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok_after(self, t: float) -> int:
        with self.lock:
            return sum(start >= t for start, _ in self.ok.values())


def _write(db: Database, clock: FakeClock, settings: Settings, name: str) -> None:
    """A handoff submission's unit of work: the account, the handoff, its event and its card row."""
    with db.session() as s:
        h = handoffs.create(
            s, form=valid_form(account_name=name), actor=Actor(REP), clock=clock, rules=settings.rules
        )
        handoffs.queue_card(s, h, HANDOFF_CHANNEL, clock())


def _writer(
    db: Database, clock: FakeClock, settings: Settings, n: int, load: Load, stop: threading.Event
) -> None:
    i = 0
    while not stop.is_set():
        name, start = f"{PREFIX}{n}-{i}", time.monotonic()
        i += 1
        try:
            _write(db, clock, settings, name)
        except DBAPIError as exc:  # the clean failure: the driver's error, the transaction rolled back
            with load.lock:
                load.failed[name] = (start, time.monotonic(), type(exc.orig).__name__)
        except Exception as exc:  # anything else is a bug this test is here to find
            with load.lock:
                load.unexpected.append(f"{name}: {exc!r}")
        else:
            with load.lock:
                load.ok[name] = (start, time.monotonic())
        time.sleep(0.005)


def _drainer(delivery: Delivery, load: Load, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            delivery.run(limit=20)
        except DBAPIError:  # the scheduler logs it and drains again 15 s later
            with load.lock:
                load.drain_errors += 1
        time.sleep(0.01)


def _wait(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "the load stalled"
        time.sleep(0.02)


@pytest.mark.skipif(
    not (PG_DATA and PG_CTL), reason="needs the server scripts/test starts (BATON_TEST_PG_CTL)"
)
def test_a_restart_under_load_fails_writes_in_flight_cleanly_and_the_app_recovers(
    db: Database, slack: FakeSlack, settings: Settings
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to restart")
    clock = FakeClock()
    delivery = Delivery(db, WebClient(token=slack.token, base_url=slack.base_url), settings, clock)
    load, stop = Load(), threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(db, clock, settings, n, load, stop)) for n in range(WRITERS)
    ] + [threading.Thread(target=_drainer, args=(delivery, load, stop))]
    for t in threads:
        t.start()
    try:
        _wait(lambda: load.ok_after(0) >= 20)
        restart_postgres()
        back = time.monotonic()
        _wait(lambda: load.ok_after(back) >= 20)  # the app writes again, with no restart of its own
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    errs = Counter(f[2] for f in load.failed.values())
    print(f"\nrestart: {len(load.ok)} ok, {len(load.failed)} failed {dict(errs)}, drain {load.drain_errors}")
    assert load.unexpected == []
    assert load.failed, "no write was in flight during the restart: the test proved nothing"
    late = {n: f for n, f in load.failed.items() if f[0] >= back}
    assert late == {}  # once the server is back every write succeeds: no stale connection is used
    with db.session() as s:
        names = set(s.scalars(select(Account.name).where(Account.name.startswith(PREFIX))))
        # nothing half-written: each stored account has its handoff, its audit event and its card row
        per_account = s.execute(
            select(
                Account.name,
                select(func.count()).where(Handoff.account_id == Account.id).scalar_subquery(),
                select(func.count())
                .select_from(HandoffEvent)
                .join(Handoff, HandoffEvent.handoff_id == Handoff.id)
                .where(Handoff.account_id == Account.id, HandoffEvent.kind == "created")
                .scalar_subquery(),
                select(func.count())
                .select_from(Outbox)
                .join(Handoff, Outbox.handoff_id == Handoff.id)
                .where(Handoff.account_id == Account.id, Outbox.action == "card")
                .scalar_subquery(),
            ).where(Account.name.startswith(PREFIX))
        ).all()
    assert {n: counts for n, *counts in per_account} == {n: [1, 1, 1] for n in names}
    assert set(load.ok) <= names  # every write reported done is stored...
    assert names <= set(load.ok) | set(load.failed)  # ...and nothing else (a commit whose answer was lost)

    # delivery: claims whose outcome the restart swallowed wait out their lease, then are looked up
    clock.advance(seconds=LEASE.total_seconds() + 1)
    for _ in range(20):
        delivery.run(limit=500)
        with db.session() as s:
            if not s.scalar(select(func.count()).select_from(Outbox).where(Outbox.state != "sent")):
                break
        clock.advance(seconds=31)
    with db.session() as s:
        cards = dict(s.execute(select(Outbox.id, Outbox.state).where(Outbox.action == "card")).all())
    assert set(cards.values()) == {"sent"} and len(cards) == len(names)
    landed = Counter(
        ((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id")
        for m in slack.messages.get(HANDOFF_CHANNEL, [])
    )
    assert {i: landed[i] for i in cards} == dict.fromkeys(cards, 1)  # each card once, none doubled


@pytest.mark.skipif(
    not (PG_DATA and PG_CTL), reason="needs the server scripts/test starts (BATON_TEST_PG_CTL)"
)
def test_after_a_restart_while_idle_the_first_write_succeeds(db: Database, settings: Settings) -> None:
    """Connections pooled before the restart are dead after it: each is pinged before use and replaced,
    so the first request after a quiet night's database restart does not fail."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to restart")
    clock = FakeClock()
    with ExitStack() as open_sessions:  # four pooled connections, all idle once these end
        for _ in range(4):
            open_sessions.enter_context(db.session()).execute(select(func.count()).select_from(Account))
    restart_postgres()
    for n in range(4):  # each checkout takes one of the dead connections first
        _write(db, clock, settings, f"{PREFIX}idle-{n}")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Handoff)) == 4
