"""Claiming a request's key: a repeat is refused with what the first recorded, also when both copies
arrive at once, and nothing the refused copy did survives."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage import Database, repeats
from storage.models import RequestSeen
from tests.clocks import FakeClock


def test_a_repeat_gets_the_first_answer_and_a_failed_first_try_claims_nothing(db: Database) -> None:
    now = FakeClock()()
    with pytest.raises(RuntimeError), db.session() as s:  # the change failed: its key goes with it
        repeats.claim(s, "touch:T1", now)
        raise RuntimeError
    with db.session() as s:
        repeats.claim(s, "touch:T1", now)
        repeats.remember(s, "touch:T1", answer="Logged check-in")
    with pytest.raises(repeats.Repeated) as exc, db.session() as s:
        repeats.claim(s, "touch:T1", now + timedelta(minutes=4))
    assert exc.value.result == {"answer": "Logged check-in"}
    with db.session() as s:
        repeats.claim(s, None, now)  # nothing to key it by: nothing claimed
        repeats.claim(s, "touch:T2", now + repeats.KEEP + timedelta(minutes=1))  # drops day-old keys
        assert s.scalars(select(RequestSeen.key)).all() == ["touch:T2"]


def test_two_copies_at_once_act_once(db: Database) -> None:
    now = FakeClock()()
    claimed, outcome = threading.Event(), []
    release = threading.Event()

    def first() -> None:
        with db.session() as s:
            repeats.claim(s, "question:V1", now)
            claimed.set()
            release.wait(5)

    def second() -> None:
        claimed.wait(5)
        try:
            with db.session() as s:
                repeats.claim(s, "question:V1", now)
            outcome.append("acted")
        except repeats.Repeated:
            outcome.append("repeat")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    claimed.wait(5)
    threading.Timer(0.3, release.set).start()  # the second copy is waiting on the first's key by then
    for t in threads:
        t.join(10)
    assert outcome == ["repeat"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RequestSeen)) == 1
