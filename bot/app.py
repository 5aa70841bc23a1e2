"""Building the Bolt app: one WebClient for the process, listeners registered in one place."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.deps import Deps
from bot.directory import Directory
from bot.errors import RequestExecutor, install_error_handler
from bot.guard import quiet_request_verification, same_workspace
from bot.listeners import register_listeners
from clock import Clock, utcnow
from settings import Settings
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
    directory = Directory(client, default_locale=settings.locale, cs_members=settings.cs_users)
    deps = Deps(db=db, settings=settings, clock=clock, directory=directory)
    install_error_handler(app, deps)  # what listeners raise is answered there
    app.use(same_workspace(client))  # runs after Bolt's signature check: only signed requests reach it
    register_listeners(app, deps)
    return app


def slack_problem(settings: Settings) -> str | None:
    """One line a person can act on when Slack refuses the bot token or cannot be reached; None when
    ``auth.test`` answers. Checked before serving or sending, so a typo is not a traceback."""
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
        if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"):
            return (
                f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token (xoxb-...) "
                "from your app's OAuth & Permissions page, and reinstall the app if it was revoked"
            )
        return f"Slack answered auth.test with {error or exc}: check SLACK_BOT_TOKEN and SLACK_API_URL"
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", None) or exc
        return (
            f"cannot reach Slack at {settings.slack_api_url} ({reason}): "
            "check the network, the proxy or SLACK_API_URL"
        )
    return None
