"""The HTTP server under connection floods: idle sockets cannot lock out /healthz for long, and
descriptor numbers past 1024 (where select() gives up) do not stop the server."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.server import FD_RESERVE, MAX_CONNECTIONS, connection_limit, create_wsgi, make_server
from storage import Database
from tests.servers import serving


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path}/h.db")
    yield db
    db.dispose()


def test_idle_connections_past_the_limit_are_shed_and_healthz_answers(sqlite_db: Database) -> None:
    limit, idle = 20, 60  # three times the connection limit, none of them saying anything
    with serving(
        create_wsgi(None, sqlite_db), max_connections=limit, idle_timeout=1, cleanup_interval=0.5
    ) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
        try:
            started = time.monotonic()
            resp = httpx.get(url + "/healthz", timeout=20)
            waited = time.monotonic() - started
            assert resp.status_code == 200 and resp.json() == {"status": "ok"}
            assert waited < 15  # three rounds of the 1 s idle timeout, not waitress's two minutes
            socks[0].settimeout(5)
            assert socks[0].recv(1) == b""  # the server hung up on the idle socket
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200  # and is still serving
        finally:
            for s in socks:
                s.close()


def test_descriptors_past_1024_do_not_stop_the_server(sqlite_db: Database) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1400
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to open 1024 descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    filler: list[int] = []
    try:
        while not filler or filler[-1] < 1030:  # every descriptor the server opens now numbers above 1024
            filler.append(os.open(os.devnull, os.O_RDONLY))
        with serving(create_wsgi(None, sqlite_db)) as url:
            for _ in range(3):
                assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(
    ("soft", "expected"),
    [
        (1024, 1024 - FD_RESERVE),
        (256, 128),
        (1_048_576, MAX_CONNECTIONS),
        (resource.RLIM_INFINITY, MAX_CONNECTIONS),
    ],
)
def test_the_connection_limit_stays_well_under_the_descriptor_budget(soft: int, expected: int) -> None:
    assert connection_limit(soft) == expected


def test_the_server_reads_its_budget_from_rlimit_nofile(
    monkeypatch: pytest.MonkeyPatch, sqlite_db: Database
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (300, 300))
    server = make_server(create_wsgi(None, sqlite_db), "127.0.0.1", 0)
    try:
        assert server.adj.connection_limit == 150  # the old fixed 1000 could never be reached on 300
        assert server.adj.asyncore_use_poll and server.adj.channel_timeout <= 30
    finally:
        server.close()
