"""Work after an ack waits its turn; the ack itself never does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.errors import KeptAck, RequestExecutor


def test_a_listener_past_its_ack_waits_for_a_slot_and_its_ack_is_sent_meanwhile() -> None:
    executor = RequestExecutor(ThreadPoolExecutor(max_workers=4), after_ack_slots=1)
    first_may_finish = threading.Event()
    after: list[str] = []

    def listener(name: str, ack: KeptAck, hold: threading.Event | None) -> None:
        ack()
        after.append(name)  # the work after the ack
        if hold is not None:
            hold.wait(5)

    first, second = KeptAck(), KeptAck()
    done_first = executor.submit(listener, "first", first, first_may_finish)
    while not after:
        threading.Event().wait(0.001)
    done_second = executor.submit(listener, "second", second, None)
    for _ in range(5000):
        if second.response is not None:
            break
        threading.Event().wait(0.001)
    assert second.response is not None and second.response.status == 200  # acked at once
    threading.Event().wait(0.05)
    assert after == ["first"]  # its work waits for the one slot
    first_may_finish.set()
    done_first.result(5)
    done_second.result(5)
    assert after == ["first", "second"]
    executor.shutdown()


def test_a_listener_waits_for_a_slot_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal must still open inside its trigger's 3 seconds when every slot is held (deliveries
    waiting out a Slack 429)."""
    import bot.errors

    monkeypatch.setattr(bot.errors, "AFTER_ACK_WAIT_SECONDS", 0.05)
    executor = RequestExecutor(ThreadPoolExecutor(max_workers=2), after_ack_slots=1)
    release = threading.Event()
    ran: list[str] = []

    def holder(ack: KeptAck) -> None:
        ack()
        release.wait(5)

    def opener(ack: KeptAck) -> None:
        ack()
        ran.append("views.open")

    held = executor.submit(holder, KeptAck())
    executor.submit(opener, KeptAck()).result(2)  # went on without the slot
    assert ran == ["views.open"]
    release.set()
    held.result(5)
    executor.shutdown()


def test_the_request_thread_wakes_when_the_ack_is_sent_not_on_a_poll() -> None:
    """Bolt's request thread polls ``ack.response`` every 10 ms: fifty polling threads in a burst
    took the GIL from the listeners doing the work. Read on the thread that made the ack, it waits
    for the listener to send it and returns then."""
    ack = KeptAck()
    threading.Timer(0.05, ack).start()  # the listener acks from its own thread a little later
    response = ack.response  # Bolt's poll reads this once: without the wait it is still None
    assert response is not None and response.status == 200


def test_other_threads_read_the_ack_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.errors

    monkeypatch.setattr(bot.errors, "ACK_WAIT_SECONDS", 60.0)
    ack = KeptAck()
    seen: list[object] = []
    reader = threading.Thread(target=lambda: seen.append(ack.response))
    reader.start()
    reader.join(10)  # a read that waited would take the whole minute
    assert not reader.is_alive() and seen == [None]
    ack()


def test_an_ack_never_sent_stops_the_wait_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.errors

    monkeypatch.setattr(bot.errors, "ACK_WAIT_SECONDS", 0.01)
    assert KeptAck().response is None  # Bolt then logs the missing ack and answers Slack itself
