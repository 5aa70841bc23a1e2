"""Events API listeners."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.deps import Deps
from bot.views.home import home_view
from handoff import service


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = event["user"]
        tr = deps.tr_for(user_id)
        with deps.db.session() as s:
            view = home_view(tr, *service.open_for(s, user_id, limit=40))
        client.views_publish(user_id=user_id, view=view)
