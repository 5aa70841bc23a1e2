"""Serving a WSGI app on loopback with the production server (waitress) for one test."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from waitress import wasyncore

from bot.server import make_server


@contextmanager
def serving(wsgi: Callable[..., Any], threads: int = 8, **limits: Any) -> Iterator[str]:
    """Yields the base URL; stops the server and its loop thread afterwards. ``limits`` go to
    ``make_server`` (max_connections, idle_timeout, cleanup_interval)."""
    server = make_server(wsgi, "127.0.0.1", 0, threads=threads, **limits)
    server.adj.asyncore_loop_timeout = 0.02  # the loop notices the stop at once, not after a second
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except (OSError, ValueError):
            # closing the sockets from this thread can end waitress's select() loop with a bad file
            # descriptor; that is the stop we asked for, anything else is a real failure
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stopping.set()
        server.close()
        # waitress's server.close() leaves its worker threads and client channels behind: end them too,
        # so a test leaks no threads and the loop (which runs while its map has channels) returns
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(server._map)
        thread.join(timeout=5)


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that is made up as it is read, counting what was read."""

    def __init__(self, size: int) -> None:
        self.left, self.read_bytes = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return b"a" * n
