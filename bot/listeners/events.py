"""Events API listeners."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.deps import Deps
from bot.listeners.commands import help_text
from bot.listeners.home import publish_home


def home_opened(event: dict[str, Any], client: WebClient, deps: Deps) -> None:
    if event.get("tab", "home") != "home":
        return
    publish_home(client, deps, event["user"], help_text)


def register(app: App) -> None:
    app.event("app_home_opened")(home_opened)
