"""The one place where listeners are registered. Listeners are plain module-level functions; what
every one needs (``Deps``) reaches them as the ``deps`` argument, set on each request's context."""

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.deps import Deps
from bot.listeners import actions, alerts, commands, crm, events, touches, views


def register_listeners(app: App, deps: Deps) -> None:
    def with_deps(context: dict[str, Any], next: Callable[[], None]) -> None:
        context["deps"] = deps
        next()

    app.use(with_deps)
    for module in (commands, actions, views, events, alerts, touches, crm):
        module.register(app)
