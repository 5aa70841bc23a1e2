"""HTTP mode on waitress (a multi-threaded production WSGI server), and Socket Mode."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from storage import Database

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"

StartResponse = Callable[..., Any]
# Slack's payloads are a few KB (a modal submission tops out well under this); anything bigger is not Slack.
MAX_SLACK_BODY = 1024 * 1024


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _capped_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it is over MAX_SLACK_BODY; never reads more than one byte past the
    cap, so an unsigned 200 MB body costs nothing before the signature check refuses it."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        n = int(length)
        if n < 0:
            raise ValueError(length)  # read(-1) would read everything
        return None if n > MAX_SLACK_BODY else stream.read(n)
    if not environ.get("wsgi.input_terminated"):
        return b""  # PEP 3333: without a length the body may only be read when the server ends it
    chunks, size = [], 0
    while size <= MAX_SLACK_BODY:
        chunk = stream.read(min(65536, MAX_SLACK_BODY + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > MAX_SLACK_BODY else b"".join(chunks)


def create_wsgi(
    app: App | None, db: Database, api: Any = None, slack_problem: Callable[[], str | None] | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Routes: ``POST /slack/events`` to Bolt (which verifies signatures; bodies over 1 MiB are refused
    before it reads them), ``GET /healthz``, and Baton's own API (``api.handles(path)``) when one is
    given: it streams big bodies and checks its token first. ``slack_problem`` says why Slack is not
    usable yet (None once it is): /healthz answers 503 "slack unreachable" until then."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if api is not None and api.handles(path):
            return api(environ, start_response)
        if path == "/healthz":
            if not db.ping():
                return _json(start_response, "503 Service Unavailable", {"status": "database unavailable"})
            if slack_problem is not None and (reason := slack_problem()):
                body = {"status": "slack unreachable", "reason": reason}
                return _json(start_response, "503 Service Unavailable", body)
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == EVENTS_PATH and slack is not None:
            if method != "POST":
                return _json(start_response, "405 Method Not Allowed", {"error": "use POST"})
            try:
                body = _capped_body(environ)
            except ValueError:
                return _json(start_response, "400 Bad Request", {"error": "bad Content-Length"})
            if body is None:
                return _json(start_response, "413 Content Too Large", {"error": "body over 1 MiB"})
            environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            return slack(environ, start_response)
        return _json(start_response, "404 Not Found", {"error": f"no route for {method} {path}"})

    return wsgi


# Descriptors kept back from client connections: the database pool (up to 60), Slack calls from the
# listener threads (64) and the scheduler, temp files for request bodies, logs.
FD_RESERVE = 256
MAX_CONNECTIONS = 1000
# An idle connection is closed after this long (checked every CLEANUP_SECONDS): a flood of idle sockets
# holds the connection slots for seconds, not waitress's default two minutes. A proxy in front should
# keep its upstream keep-alive shorter than this.
IDLE_TIMEOUT_SECONDS = 15
CLEANUP_SECONDS = 3


def connection_limit(soft_nofile: int) -> int:
    """Open connections allowed for a process that may have ``soft_nofile`` descriptors: well under the
    budget, so accepting one more can never fail for want of a descriptor (or starve the database)."""
    import resource

    if soft_nofile == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    spare = soft_nofile - FD_RESERVE if soft_nofile >= 2 * FD_RESERVE else soft_nofile // 2
    return max(8, min(MAX_CONNECTIONS, spare))


def make_server(
    wsgi: Callable[..., Any],
    host: str,
    port: int,
    threads: int = 16,
    *,
    max_connections: int | None = None,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    cleanup_interval: float = CLEANUP_SECONDS,
) -> Any:
    """A waitress server bound now (port 0 picks a free one); call ``.run()`` to serve.

    poll(), not select(): select() fails outright once any descriptor number passes 1024."""
    import resource

    from waitress.server import create_server

    if max_connections is None:
        max_connections = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    return create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="baton",
        asyncore_use_poll=True,
        connection_limit=max_connections,
        channel_timeout=idle_timeout,
        cleanup_interval=cleanup_interval,
    )


def serve_http(
    app: App,
    db: Database,
    port: int,
    host: str = "0.0.0.0",
    api: Any = None,
    slack_problem: Callable[[], str | None] | None = None,
) -> None:
    server = make_server(create_wsgi(app, db, api, slack_problem), host, port)
    log.info("Baton listening on http://%s:%s%s", host, server.effective_port, EVENTS_PATH)
    server.run()


def socket_mode(app: App, app_token: str) -> Any:
    """Bolt's Socket Mode handler on slack_sdk's built-in WebSocket client (no extra dependency); it
    asks ``apps.connections.open`` through the app's own WebClient for the URL to connect to."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)


def serve_socket_mode(
    app: App, db: Database, app_token: str, port: int, api: Any = None, slack: Any = None
) -> None:
    """Socket Mode for Slack traffic; /healthz and Baton's API still answer over HTTP. ``slack`` (a
    ``SlackReadiness``) is waited for before connecting: the socket needs Slack to answer."""
    problem = slack.problem if slack is not None else None
    health = make_server(create_wsgi(None, db, api, problem), "0.0.0.0", port, threads=4)
    threading.Thread(target=health.run, name="healthz", daemon=True).start()
    log.info("Baton in Socket Mode; health check on port %s", health.effective_port)
    if slack is not None:
        slack.wait()
    socket_mode(app, app_token).start()
