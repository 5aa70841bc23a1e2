"""A fake Slack Web API on loopback. The real slack_sdk WebClient talks to it over HTTP; every call is
recorded, and every message and view is checked with slack_sdk's Block Kit models plus the limits
those models skip (blocks per message / view)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.blockkit import check_blocks, check_view

_JSON_FIELDS = ("blocks", "view", "attachments", "metadata")
_MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
_VIEW_METHODS = {"views.open", "views.update", "views.push", "views.publish"}


Failure = tuple[int, dict[str, str], dict[str, Any]]  # HTTP status, headers, JSON body
LOST = "lost"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    def __init__(self, *, validate: bool = True, port: int = 0) -> None:
        self.validate = validate
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []  # what the app sent to response_url and Slack took
        # answers for the next posts to any response_url, oldest first (then they succeed again); a
        # str body is sent as text, as Slack answers "expired_url"
        self.response_fail: list[tuple[int, dict[str, str], dict[str, Any] | str]] = []
        self.expired: set[str] = set()  # response_url keys that answer 404 expired_url to every post
        self.response_attempts: list[int] = []  # the status of every post to a response_url
        self.problems: list[str] = []  # Block Kit violations; tests fail on any
        self.locales: dict[str, str] = {}
        self.emails: dict[str, str] = {}  # email -> user id: users.lookupByEmail and users.info's profile
        self.usergroups: dict[str, list[str]] = {}
        self.auth: dict[str, Any] = {"team_id": "T1"}  # the workspace (and grid org) auth.test names
        self.fail: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = {}
        # consulted for calls ``fail`` has nothing queued for: a failure to answer with, LOST (carry the
        # call out, never answer it) or None (answer normally). Storms that pick by message use it.
        self.failer: Callable[[str, dict[str, Any]], Failure | str | None] | None = None
        self.drop_answer: dict[str, int] = {}  # method -> how many calls to carry out but never answer
        # method -> an event: calls are carried out, then their answer waits until it is set (a client
        # killed meanwhile never hears that its message landed)
        self.hold: dict[str, threading.Event] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel -> top-level messages, oldest first
        self.replies: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (channel, thread ts) -> replies
        self.uploads: dict[str, bytes] = {}  # file id -> bytes sent to its upload URL
        self.token = "xoxb-test"
        self.app_token = "xapp-1-test"
        self.socket_url = ""  # what apps.connections.open answers: a loopback Socket Mode endpoint
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        # a short poll so stop() returns at once rather than after serve_forever's default half second
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/"

    def response_url(self, key: str = "r") -> str:
        return f"http://127.0.0.1:{self._server.server_port}/response/{key}"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what tests read -------------------------------------------------------------------------
    def of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """The calls of ``method`` once there are ``count`` of them (listeners run after the ack)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([c for c in self.calls if c.method == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"expected {count} {method} call(s); saw {seen}")
                self._cond.wait(left)
            return [c for c in self.calls if c.method == method]

    def wait_responses(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.responses) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} response_url post(s); saw {len(self.responses)}")
                self._cond.wait(left)
            return list(self.responses)

    # --- the server --------------------------------------------------------------------------------
    def _record(self, method: str, args: dict[str, Any]) -> None:
        problems: list[str] = []
        if not self.validate:
            pass
        elif method in _MESSAGE_METHODS or method == "response_url":
            problems = check_blocks(args.get("blocks") or [], limit=50, where=method)
            if not args.get("text") and not args.get("blocks") and method != "response_url":
                problems.append(f"{method}: neither text nor blocks")
        elif method in _VIEW_METHODS:
            problems = check_view(args.get("view") or {}, where=method)
        with self._cond:
            self.problems.extend(problems)
            if method == "response_url":
                self.responses.append(args)
            else:
                self.calls.append(Call(method, args))
            self._cond.notify_all()

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBATON", "bot_id": "BBATON", "user": "baton", **self.auth}
        if method == "chat.postMessage":
            channel = args.get("channel", "")
            if channel.startswith("U"):
                channel = "D" + channel[1:]  # a DM to a user lands in their IM channel
            ts = f"{1700000000 + next(self._ts)}.000100"
            msg = {"ts": ts, "text": args.get("text"), "metadata": args.get("metadata")}
            with self._cond:
                if args.get("thread_ts"):
                    self.replies.setdefault((channel, args["thread_ts"]), []).append(msg)
                else:
                    self.messages.setdefault(channel, []).append(msg)
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            port = self._server.server_port
            return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{port}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else files
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files or []]}
        if method == "conversations.replies":
            with self._cond:
                msgs = list(self.replies.get((args.get("channel", ""), args.get("ts", "")), []))
            return {"ok": True, "messages": msgs, "has_more": False}
        if method == "conversations.history":
            with self._cond:
                msgs = list(reversed(self.messages.get(args.get("channel", ""), [])))
            return {"ok": True, "messages": msgs, "has_more": False}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_url}
        if method == "conversations.open":
            user = str(args.get("users", "")).split(",")[0]
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.getPermalink":
            return {
                "ok": True,
                "permalink": f"https://example.slack.com/archives/{args.get('channel')}/"
                f"p{str(args.get('message_ts', '')).replace('.', '')}",
            }
        if method in _VIEW_METHODS:
            return {"ok": True, "view": {"id": f"V{next(self._ts)}", **(args.get("view") or {})}}
        if method == "users.info":
            user = args.get("user", "")
            email = next((e for e, u in self.emails.items() if u == user), None)
            profile = {"email": email} if email else {}
            return {
                "ok": True,
                "user": {"id": user, "locale": self.locales.get(user, "en-US"), "profile": profile},
            }
        if method == "users.lookupByEmail":  # Slack matches emails case-insensitively
            wanted = str(args.get("email", "")).lower()
            user = next((u for e, u in self.emails.items() if e.lower() == wanted), None)
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "team_id": "T1",
                    "name": wanted.split("@")[0],
                    "profile": {"email": wanted},
                },
            }
        if method == "usergroups.users.list":
            group = args.get("usergroup", "")
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.usergroups[group]}
        return {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _args(self) -> dict[str, Any]:
                url = urlparse(self.path)
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if raw:
                    if "json" in (self.headers.get("Content-Type") or ""):
                        args.update(json.loads(raw))
                    else:
                        args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                for key in _JSON_FIELDS:
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                return args

            def _send(
                self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None
            ) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                kind = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                path = urlparse(self.path).path
                if path.startswith("/upload/"):  # the upload URL files.getUploadURLExternal handed out
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    with fake._cond:
                        fake.uploads[path.rsplit("/", 1)[1]] = data
                        fake._cond.notify_all()
                    body = f"OK - {len(data)}".encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                args = self._args()
                if path.startswith("/response/"):
                    with fake._cond:
                        failure = fake.response_fail.pop(0) if fake.response_fail else None
                        if failure is None and path.rsplit("/", 1)[1] in fake.expired:
                            failure = (404, {}, "expired_url")
                        fake.response_attempts.append(failure[0] if failure else 200)
                    if failure is not None:
                        self._send(failure[0], failure[2], failure[1])
                        return
                    fake._record("response_url", args)
                    self._send(200, {"ok": True})
                    return
                method = path.removeprefix("/api/")
                # the bot token for the Web API; the app-level token (xapp-) only opens Socket Mode
                token = fake.app_token if method == "apps.connections.open" else fake.token
                if self.headers.get("Authorization") != f"Bearer {token}" and method != "oauth.v2.access":
                    self._send(200, {"ok": False, "error": "not_authed"})
                    return
                with fake._cond:
                    queued = fake.fail.get(method)
                    failure: Failure | str | None = queued.pop(0) if queued else None
                    if failure is None and fake.failer is not None:
                        failure = fake.failer(method, args)
                lost = failure == LOST
                if isinstance(failure, tuple):
                    fake._record(method, {**args, "_failed": failure[0]})
                    status, headers, body = failure
                    self._send(status, body, headers)
                    return
                fake._record(method, args)
                answer = fake._answer(method, args)
                held = fake.hold.get(method)
                if held is not None:
                    held.wait(30)
                with fake._cond:
                    drop = fake.drop_answer.get(method, 0)
                    if drop:
                        fake.drop_answer[method] = drop - 1
                if drop or lost:  # done, but the answer is lost: the client sees the connection close
                    self.close_connection = True
                    return
                self._send(200, answer)

            do_POST = _handle
            do_GET = _handle

        return Handler


def main() -> None:
    """Run the fake on its own (benchmarks use it so its work does not share a process with the load)."""
    import sys

    fake = FakeSlack(validate=False)
    if len(sys.argv) > 1:  # fixed port requested
        fake._server.server_close()
        fake._server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), fake._handler())
        fake._server.daemon_threads = True
    print(fake.base_url, flush=True)
    fake._server.serve_forever()


if __name__ == "__main__":
    main()
