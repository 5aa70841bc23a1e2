"""Two things at once, as the tests that race instances or writers need them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, text


def at_once(calls: Sequence[Callable[[], Any]], timeout: float = 30) -> list[Any]:
    """Run ``calls`` on their own threads, released together by a barrier; their results, in the
    order they finished."""
    results: list[Any] = []
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def write_meanwhile(engine: Engine, sql: str, wrote: list[str], timeout: float = 10) -> None:
    """One write from another connection while the caller is mid-import, waiting at most 200 ms for
    SQLite's lock (less than Slack's 3 s): ``wrote`` gets "ok" once it committed."""

    def submit(done: threading.Event) -> None:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout=200")
            conn.execute(text(sql))
            conn.commit()
        wrote.append("ok")
        done.set()

    done = threading.Event()
    threading.Thread(target=submit, args=(done,)).start()
    assert done.wait(timeout), "the write made meanwhile did not finish"
