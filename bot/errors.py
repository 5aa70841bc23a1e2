"""The one error path for Slack requests: a listener raises, this answers the person.

Listeners ack first and then let domain errors (``handoff.service`` and ``alerts.service``) and Slack's
refusals propagate; Bolt hands them to the handler installed here, which tells the person what
happened in their language: inline on the modal when the submission is not yet acknowledged,
otherwise privately (``bot.respond.answer``: the ``response_url``, retried, else an ephemeral note in
the request's channel, else a DM), after the ack. Anything unexpected gets
"something went wrong" plus one log line naming the request and the code path, never its body.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_bolt.request import payload_utils
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import event
from sqlalchemy.orm import Session

from alerts import service as alerts
from bot.deps import Deps
from bot.i18n import Translator
from bot.ids import Action
from bot.listeners.common import ephemeral
from bot.respond import answer, channel_of, user_of
from bot.text import escape
from bot.views.fields import modal, section
from handoff import service as handoffs
from storage.db import writes_first

log = logging.getLogger(__name__)

# Whether the listener running on this thread has committed a write: "nothing was changed" must be true.
_work = threading.local()


def _flushed(session: Session, _context: object) -> None:
    session.info["wrote"] = True


def _committed(session: Session) -> None:
    if session.info.pop("wrote", False):
        _work.saved = True


def _rolled_back(session: Session) -> None:
    session.info.pop("wrote", None)


def _watch_commits() -> None:
    if not event.contains(Session, "after_flush", _flushed):
        event.listen(Session, "after_flush", _flushed)
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_rollback", _rolled_back)


# Listeners past their ack that may run at once. A burst of 50 submissions otherwise had 50 threads
# delivering cards (3x the work of the ack itself) while the rest of the burst waited for the GIL and
# the database to ack: work after the ack queues here instead, and acks go first. Only scheduling:
# a listener that waited AFTER_ACK_WAIT_SECONDS goes on anyway, so a modal still opens well inside its
# trigger's 3 seconds when the slots are held by deliveries waiting out a Slack 429.
AFTER_ACK_SLOTS = 4
AFTER_ACK_WAIT_SECONDS = 1.0
ACK_WAIT_SECONDS = 3.0  # Bolt's ack timeout: the request thread's wait ends with it


class RequestExecutor(Executor):
    """Runs each listener with a fresh record of what it wrote (a request is one unit of work to the
    person who sent it); the work itself goes to ``inner``. Until its ack is sent a listener's SQLite
    writes go first (``storage.db.writes_first``); once it is sent, the rest of the listener waits
    for one of ``after_ack_slots`` turns, so a burst's acks are not held up by the work after them."""

    def __init__(self, inner: Executor, after_ack_slots: int = AFTER_ACK_SLOTS) -> None:
        self.inner = inner
        self._slots = threading.BoundedSemaphore(after_ack_slots)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def fresh() -> Any:
            _work.saved, _work.on_ack, _work.slot = False, self._acked, False
            writes_first(True)
            try:
                return fn(*args, **kwargs)
            finally:
                writes_first(False)
                _work.on_ack = None
                if _work.slot:
                    _work.slot = False
                    self._slots.release()

        return self.inner.submit(fresh)

    def after_ack(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Work for a request already answered (the error path telling the person): it takes an
        after-ack turn like the rest of a listener past its ack, and its writes do not go first."""

        def later() -> Any:
            slot = self._slots.acquire(timeout=AFTER_ACK_WAIT_SECONDS)
            try:
                return fn(*args)
            finally:
                if slot:
                    self._slots.release()

        return self.inner.submit(later)

    def _acked(self) -> None:
        writes_first(False)
        _work.slot = self._slots.acquire(timeout=AFTER_ACK_WAIT_SECONDS)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.inner.shutdown(wait=wait, cancel_futures=cancel_futures)


class KeptAck(Ack):
    """An ack that stays sent. Bolt resets ``ack.response`` to None when a listener raises after acking;
    if that lands before its 10 ms poll saw the ack, Slack got a 404 three seconds later. Sending it
    tells the listener's ``RequestExecutor`` (on the listener's own thread) that the ack is out.
    Read on the thread that made it (Bolt's request thread, which polls ``response`` every 10 ms for
    up to 3 s), it waits until the ack is sent: in a burst, fifty threads polling took the GIL from
    the listeners doing the work."""

    _sent: BoltResponse | None = None

    def __init__(self) -> None:
        super().__init__()
        self._out = threading.Event()
        self._waiter = threading.get_ident()
        self._until = time.monotonic() + ACK_WAIT_SECONDS

    @property  # type: ignore[override]
    def response(self) -> BoltResponse | None:
        if self._sent is None and threading.get_ident() == self._waiter:
            self._out.wait(max(0.0, self._until - time.monotonic()))
        return self._sent

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        if value is not None or self._sent is None:
            first = self._sent is None and value is not None
            self._sent = value
            if value is not None:
                self._out.set()
            hook = getattr(_work, "on_ack", None)
            if first and hook is not None:
                _work.on_ack = None
                hook()


_PAYLOAD_READERS = (
    payload_utils.to_options,
    payload_utils.to_shortcut,
    payload_utils.to_action,
    payload_utils.to_view,
    payload_utils.to_command,
    payload_utils.to_event,
    payload_utils.to_message,
    payload_utils.to_step,
)


class Boundary(Middleware):
    """First middleware after the signature check: installs the kept ack, and answers a payload Bolt's
    own readers would crash on (a view without a type, an action that is not an object) before any
    listener or error handler tries to read it."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        req.context["ack"] = KeptAck()
        try:
            for read in _PAYLOAD_READERS:
                read(req.body)
        except (KeyError, TypeError, AttributeError, IndexError):
            log.warning("refused a malformed %s payload", str(req.body.get("type", "unknown"))[:40])
            if req.body.get("type") == "view_submission":
                tr = self.deps.channel_tr
                return BoltResponse(status=200, body=_modal_answer({}, tr.t("error.unexpected"), tr))
            return BoltResponse(status=200, body="")
        return next()


_REFUSALS: dict[str, str] = {
    Action.ACCEPT: "refuse.not_cs.accept",
    Action.ASSIGN: "refuse.not_cs.assign",
}


def message_for(error: Exception, body: dict[str, Any], tr: Translator) -> str | None:
    """What to tell the person about a domain error or Slack refusal; None when it is unexpected."""
    action = ((body.get("actions") or [{}])[0] or {}).get("action_id", "")
    if isinstance(error, alerts.NotFound):
        return tr.t("error.gone.alert")
    if isinstance(error, alerts.NotAllowed):
        return tr.t("refuse.alert")
    if isinstance(error, alerts.AlreadyResolved):
        return tr.t("alert.already_resolved")
    if isinstance(error, alerts.WrongKind):
        return tr.t("error.wrong_kind")
    if isinstance(error, handoffs.NotFound):
        return tr.t("error.gone.handoff")
    if isinstance(error, handoffs.NotAllowed):
        return tr.t(_REFUSALS.get(action, "refuse.not_editor"))
    if isinstance(error, handoffs.Conflict):
        return tr.t("error.edited_meanwhile")
    if isinstance(error, SlackApiError) and _method(error) == "views.open":
        return tr.t("error.modal_failed", error=_slack_error(error))
    return None


def _method(error: SlackApiError) -> str:
    url = getattr(error.response, "api_url", "") or ""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _slack_error(error: SlackApiError) -> str:
    try:
        return str(error.response.get("error") or error.response.status_code)
    except Exception:  # a response that is not JSON (a proxy's 502 page)
        return str(getattr(error.response, "status_code", "error"))


def _where(body: dict[str, Any]) -> str:
    """The request's kind and id, for the log: which button, modal or command, never what was in it."""
    kind = str(body.get("type") or ("command" if body.get("command") else "event"))
    if body.get("actions"):
        return f"{kind} {(body['actions'][0] or {}).get('action_id')}"
    if isinstance(body.get("view"), dict):
        return f"{kind} {body['view'].get('callback_id')}"
    if body.get("command"):
        return f"{kind} {body['command']}"
    return f"{kind} {(body.get('event') or {}).get('type', '')}".strip()


def _first_input(view: dict[str, Any]) -> str | None:
    blocks = view.get("blocks") if isinstance(view, dict) else None
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


def _modal_answer(view: dict[str, Any], text: str, tr: Translator) -> dict[str, Any]:
    """The submission's ack: the text under the first field, or a modal saying it when there is none."""
    block = _first_input(view)
    if block:
        return {"response_action": "errors", "errors": {block: text}}
    shown = modal("baton_error", tr.t("error.title"), [section(escape(text))])
    shown["close"] = {"type": "plain_text", "text": tr.t("error.close")}
    return {"response_action": "update", "view": shown}


def install_error_handler(app: App, deps: Deps) -> None:
    """The Boundary middleware goes first (call this before ``app.use`` of anything else)."""
    _watch_commits()
    app.use(Boundary(deps))

    def translator_for(user_id: str | None) -> Translator:
        try:
            return deps.tr_for(user_id)
        except Exception:  # Slack is down too: the workspace language still reads
            return deps.channel_tr

    @app.error
    def handle(
        error: Exception,
        body: dict[str, Any],
        request: BoltRequest,
        response: BoltResponse | None,
        client: WebClient,
    ) -> BoltResponse | None:
        body = body if isinstance(body, dict) else {}
        user_id = user_of(body)
        tr = translator_for(user_id)
        text = message_for(error, body, tr)
        if text is None:
            frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
            log.error("%s from %s failed: %s\n%s", _where(body), user_id, type(error).__name__, frames)
            saved = getattr(_work, "saved", False)
            text = tr.t("error.unexpected_after_save" if saved else "error.unexpected")
        else:
            log.info("%s from %s refused: %s", _where(body), user_id, type(error).__name__)
        if response is not None:  # not acknowledged yet: the answer goes in the ack
            if body.get("type") == "view_submission":
                return BoltResponse(status=200, body=_modal_answer(body.get("view") or {}, text, tr))
            # the ack goes first: telling may take retries, so it waits on a listener thread
            executor = app.listener_runner.listener_executor
            try:
                if isinstance(executor, RequestExecutor):
                    executor.after_ack(_tell, request, client, user_id, text, body)
                else:
                    executor.submit(_tell, request, client, user_id, text, body)
            except RuntimeError:  # shutting down: no thread to wait on
                _tell(request, client, user_id, text, body)
            return BoltResponse(status=200, body="")
        _tell(request, client, user_id, text, body)
        return None

    def _tell(
        request: BoltRequest, client: WebClient, user_id: str | None, text: str, body: dict[str, Any]
    ) -> None:
        if body.get("type") == "event_callback":  # nobody asked: opening the Home tab is not a request
            return
        respond = request.context.respond
        url = respond.response_url if respond is not None else None
        answer(deps, client, url=url, user_id=user_id, channel_id=channel_of(body), message=ephemeral(text))
