"""Building the Bolt app: one WebClient for the process, listeners registered in one place."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.deps import Deps
from bot.directory import Directory
from bot.errors import RequestExecutor, install_error_handler
from bot.guard import quiet_request_verification, same_workspace
from bot.i18n import translator
from bot.listeners import register_listeners
from clock import Clock, utcnow
from settings import SUPPORTED_LOCALES, Settings
from storage import Database

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> WebClient:
    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)


def create_app(
    settings: Settings,
    db: Database,
    *,
    clock: Clock = utcnow,
    client: WebClient | None = None,
    verify_token: bool = True,
    listener_executor: Executor | None = None,
) -> App:
    """``listener_executor`` runs the listeners (tests pass one that can tell when they are done)."""
    client = client or make_client(settings)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        token_verification_enabled=verify_token,
        # ack first, then run the listener: modals open inside Slack's 3-second window
        process_before_response=False,
        # Bolt acks from inside the listener, so a busy pool delays acks: size it for bursts, not cores.
        listener_executor=RequestExecutor(
            listener_executor or ThreadPoolExecutor(max_workers=64, thread_name_prefix="listener")
        ),
    )
    quiet_request_verification()
    for locale in SUPPORTED_LOCALES:  # parsed once now, not by a whole first burst at once
        translator(locale)
    directory = Directory(client, default_locale=settings.locale, cs_members=settings.cs_users)
    deps = Deps(db=db, settings=settings, clock=clock, directory=directory)
    install_error_handler(app, deps)  # what listeners raise is answered there
    app.use(same_workspace(client))  # runs after Bolt's signature check: only signed requests reach it
    register_listeners(app, deps)
    return app


_REFUSED = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired")
# auth.test is retried this often while Slack cannot be reached: doubling from the first to the last
RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS = 1.0, 60.0


def slack_check(settings: Settings) -> tuple[str, str | None]:
    """Ask ``auth.test`` once: ``("ok", None)``, ``("refused", line)`` when Slack answers but will not
    take the token or URL (a configuration error: fix and restart), or ``("unreachable", line)`` for an
    outage (no answer, a timeout, a 5xx or a 429), which retrying fixes."""
    from slack_sdk.errors import SlackApiError

    quiet = logging.getLogger("baton.slack_check")  # the answer below is the message: no client log lines
    quiet.propagate, quiet.disabled = False, True
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=5,
        logger=quiet,
        retry_handlers=[],  # one question, one answer: no retries that stretch a refusal to seconds
    )
    try:
        client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "") if exc.response is not None else ""
        status = getattr(exc.response, "status_code", 200)
        if status >= 500 or status == 429:
            return "unreachable", f"Slack answered auth.test with HTTP {status} ({error or 'no reason'})"
        if error in _REFUSED:
            return "refused", (
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-...) "
                "from your app's OAuth & Permissions page, and reinstall the app if it was revoked"
            )
        return (
            "refused",
            f"Slack answered auth.test with {error or exc}: check SLACK_BOT_TOKEN and SLACK_API_URL",
        )
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", None) or exc
        return "unreachable", (
            f"cannot reach Slack at {settings.slack_api_url} ({reason}): "
            "check the network, the proxy or SLACK_API_URL"
        )
    return "ok", None


def slack_problem(settings: Settings) -> str | None:
    """One line a person can act on when Slack refuses the bot token or cannot be reached; None when
    ``auth.test`` answers. Checked before sending, so a typo is not a traceback."""
    return slack_check(settings)[1]


class SlackReadiness:
    """Whether Slack has answered ``auth.test`` since the server started. ``serve`` starts without it
    (``/healthz`` and the ingest API keep working) and retries in the background with backoff."""

    def __init__(self, settings: Settings, problem: str | None = None) -> None:
        self.settings = settings
        self._problem = problem
        self._ready = threading.Event()
        if problem is None:
            self._ready.set()

    def problem(self) -> str | None:
        """None when ready; otherwise the last reason Slack could not be used."""
        return None if self._ready.is_set() else self._problem

    def wait(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def retry_in_background(self, stop: threading.Event | None = None) -> threading.Thread:
        stop = stop or threading.Event()
        thread = threading.Thread(target=self._retry, args=(stop,), name="slack-ready", daemon=True)
        thread.start()
        return thread

    def _retry(self, stop: threading.Event) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._ready.is_set() and not stop.wait(delay):
            kind, problem = slack_check(self.settings)
            if kind == "ok":
                log.info("Slack answers auth.test: ready")
                self._ready.set()
                return
            if problem != self._problem:
                log.warning("Slack is not ready: %s", problem)
            self._problem = problem
            delay = min(delay * 2, RETRY_MAX_SECONDS)
