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
from ingest import Batch, IngestError, ingest, records
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


class IngestAPI:
    def __init__(self, db: Database, *, token: str, clock: Clock, timezone: str = "Asia/Tokyo") -> None:
        self.db, self.token, self.clock, self.timezone = db, token, clock, timezone

    def handles(self, path: str) -> bool:
        return path in ROUTES

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        kind = ROUTES[environ.get("PATH_INFO", "")]
        if environ.get("REQUEST_METHOD") != "POST":
            return _json(start_response, "405 Method Not Allowed", {"error": "use POST"}, Allow="POST")
        if not self.token:
            return _json(
                start_response,
                "401 Unauthorized",
                {"error": "the ingest API is disabled: set BATON_INGEST_TOKEN on the server"},
            )
        auth = environ.get("HTTP_AUTHORIZATION", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _json(
                start_response,
                "401 Unauthorized",
                {"error": "missing or wrong bearer token"},
                WWW_Authenticate='Bearer realm="baton"',
            )
        header = Message()
        header["Content-Type"] = environ.get("CONTENT_TYPE") or ""
        ctype, charset = header.get_content_type(), header.get_param("charset")
        if not environ.get("CONTENT_TYPE"):
            ctype = ""  # Message reads a missing Content-Type as text/plain
        if ctype in ("text/csv", "application/csv"):
            fmt = "csv"
        elif ctype in (
            "application/json",
            "application/x-ndjson",
            "application/jsonl",
            "application/json-lines",
        ):
            fmt = "json"
        else:
            return _json(
                start_response,
                "415 Unsupported Media Type",
                {"error": "send text/csv, application/json or application/x-ndjson"},
            )
        query = parse_qs(environ.get("QUERY_STRING", ""))
        as_of = local_date(self.clock, self.timezone)
        if kind == "accounts" and query.get("as_of"):
            try:
                as_of = date.fromisoformat(query["as_of"][0])
            except ValueError:
                return _json(start_response, "400 Bad Request", {"error": "as_of must be a date, YYYY-MM-DD"})
        try:
            encoding = codec_for(str(charset)) if charset else None
        except LookupError:
            return _json(
                start_response,
                "415 Unsupported Media Type",
                {"error": f"charset {charset!r} is not an encoding Baton knows: send UTF-8 or shift_jis"},
            )
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
        body: dict[str, Any] = {"rows": result.rows}
        if result.details.get("recovered"):  # an import a crashed process left half-applied, undone first
            body["rolled_back_imports"] = [r.import_id for r in result.details["recovered"]]
        if kind == "touches":
            body["skipped"] = result.details["skipped"]
        if kind == "accounts":
            body.update(
                as_of=as_of.isoformat(), created=result.created, updated=result.updated, linked=result.linked
            )
        return _json(start_response, "200 OK", body)
