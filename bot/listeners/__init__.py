"""The one place where listeners are registered."""

from slack_bolt import App

from bot.deps import Deps
from bot.listeners import actions, alerts, commands, crm, events, touches, views


def register_listeners(app: App, deps: Deps) -> None:
    commands.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    events.register(app, deps)
    alerts.register(app, deps)
    touches.register(app, deps)
    crm.register(app, deps)
