"""The webhook's background pass: one at a time, a burst of deliveries coalesced into one more run."""

from __future__ import annotations

import threading

from crm.inbox import Coalesced


def test_a_burst_of_kicks_runs_one_pass_then_one_more_never_two_at_once() -> None:
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    runs: list[int] = []
    running = 0
    overlap = False

    def work() -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        runs.append(len(runs))
        started.set()
        release.wait(5)
        running -= 1
        if len(runs) == 2:
            done.set()

    kick = Coalesced(work)
    kick()
    assert started.wait(5)
    for _ in range(12):  # a dozen deliveries while the first pass reads
        kick()
    release.set()
    assert done.wait(5)
    done.clear()
    assert not done.wait(0.2)  # nothing after the one extra run
    assert len(runs) == 2 and not overlap


def test_a_failing_pass_does_not_stop_later_kicks() -> None:
    calls: list[int] = []
    second = threading.Event()

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("HubSpot answered something odd")
        second.set()

    kick = Coalesced(work)
    kick()
    for _ in range(100):
        if not kick._running:  # the failed pass has finished
            break
        threading.Event().wait(0.01)
    kick()
    assert second.wait(5) and len(calls) == 2
