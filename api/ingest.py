"""`POST /api/v1/accounts`, `/signals`, `/metrics` and `/touches`: CSV or JSON bodies, bearer-token auth.

The body is streamed into the same ingest code the CLI uses; a refused batch answers 422 with every
bad line, and nothing is written. The text encoding is the Content-Type's charset (Shift_JIS read as
CP932, as Windows writes it), or detected from the body's first 64 KB when none is given."""

from __future__ import annotations

import hmac
import io
import json
from collections.abc import Callable, Iterable
from datetime import date
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from clock import Clock, local_date
from ingest import Batch, IngestError, Result, ingest, records
from ingest.textfile import UnreadableText, codec_for, text_stream
from storage import Database
from storage.imports import ImportBusy

StartResponse = Callable[..., Any]
ROUTES = {
    "/api/v1/accounts": "accounts",
    "/api/v1/signals": "signals",
    "/api/v1/metrics": "metrics",
    "/api/v1/touches": "touches",
}


def _json(
    start_response: StartResponse, status: str, body: dict[str, Any], **headers: str
) -> Iterable[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    hdrs = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))]
    hdrs += [(k.replace("_", "-"), v) for k, v in headers.items()]
    start_response(status, hdrs)
    return [data]


class _Body(io.RawIOBase):
    """The request body as a readable stream that stops at Content-Length."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream, self._left = stream, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


_FORMATS = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "json",
    "application/jsonl": "json",
    "application/json-lines": "json",
}


class _Refused(Exception):
    """A request answered before its body is read: status, body and extra headers."""

    def __init__(self, status: str, error: str, **headers: str) -> None:
        self.status, self.error, self.headers = status, error, headers


class IngestAPI:
    def __init__(self, db: Database, *, token: str, clock: Clock, timezone: str = "Asia/Tokyo") -> None:
        self.db, self.token, self.clock, self.timezone = db, token, clock, timezone

    def handles(self, path: str) -> bool:
        return path in ROUTES

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        kind = ROUTES[environ.get("PATH_INFO", "")]
        try:
            self._authorize(environ)
            fmt, encoding = _body_format(environ)
            as_of = self._as_of(kind, environ)
        except _Refused as exc:
            return _json(start_response, exc.status, {"error": exc.error}, **exc.headers)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            rows = records(text_stream(_Body(environ["wsgi.input"], length), encoding), fmt)
            result = ingest(self.db, kind, rows, Batch(self.clock, self.timezone, as_of, source="api"))
        except ImportBusy as exc:
            return _json(start_response, "409 Conflict", {"error": f"{exc}; nothing was written"})
        except IngestError as exc:
            return _json(
                start_response,
                "422 Unprocessable Entity",
                {
                    "error": f"refused: {exc.bad} bad line(s); nothing was written",
                    "bad_lines": exc.bad,
                    "problems": [{"line": p.line, "message": p.message} for p in exc.problems],
                },
            )
        except UnreadableText as exc:
            return _json(
                start_response,
                "422 Unprocessable Entity",
                {
                    "error": f"the body is {exc}: send UTF-8, or name its encoding as in "
                    "Content-Type: text/csv; charset=shift_jis",
                },
            )
        return _json(start_response, "200 OK", _answer(kind, result, as_of))

    def _authorize(self, environ: dict[str, Any]) -> None:
        """POST with the bearer token, checked before a byte of the body is read."""
        if environ.get("REQUEST_METHOD") != "POST":
            raise _Refused("405 Method Not Allowed", "use POST", Allow="POST")
        if not self.token:
            raise _Refused(
                "401 Unauthorized", "the ingest API is disabled: set BATON_INGEST_TOKEN on the server"
            )
        auth = environ.get("HTTP_AUTHORIZATION", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise _Refused(
                "401 Unauthorized", "missing or wrong bearer token", WWW_Authenticate='Bearer realm="baton"'
            )

    def _as_of(self, kind: str, environ: dict[str, Any]) -> date:
        """The accounts file's day: ``?as_of=``, or the team's today."""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if kind == "accounts" and query.get("as_of"):
            try:
                return date.fromisoformat(query["as_of"][0])
            except ValueError:
                raise _Refused("400 Bad Request", "as_of must be a date, YYYY-MM-DD") from None
        return local_date(self.clock, self.timezone)


def _body_format(environ: dict[str, Any]) -> tuple[str, str | None]:
    """csv or json, and the Python codec of the Content-Type's charset (None: detect it)."""
    header = Message()
    header["Content-Type"] = environ.get("CONTENT_TYPE") or ""
    ctype, charset = header.get_content_type(), header.get_param("charset")
    fmt = _FORMATS.get(ctype) if environ.get("CONTENT_TYPE") else None  # Message reads none as text/plain
    if fmt is None:
        raise _Refused(
            "415 Unsupported Media Type", "send text/csv, application/json or application/x-ndjson"
        )
    try:
        return fmt, codec_for(str(charset)) if charset else None
    except LookupError:
        raise _Refused(
            "415 Unsupported Media Type",
            f"charset {charset!r} is not an encoding Baton knows: send UTF-8 or shift_jis",
        ) from None


def _answer(kind: str, result: Result, as_of: date) -> dict[str, Any]:
    body: dict[str, Any] = {"rows": result.rows}
    if result.details.get("recovered"):  # an import a crashed process left half-applied, undone first
        body["rolled_back_imports"] = [r.import_id for r in result.details["recovered"]]
    if kind == "touches":
        body["skipped"] = result.details["skipped"]
    if kind == "accounts":
        body.update(
            as_of=as_of.isoformat(), created=result.created, updated=result.updated, linked=result.linked
        )
    return body
