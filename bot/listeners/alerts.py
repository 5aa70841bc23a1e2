"""Buttons on churn-risk / upsell alert cards. Only customer success and the account's CSM may press them;
anyone else is told so privately. The change and its card update are written together (the outbox),
then delivered at once; the scheduler's outbox job catches anything left over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from alerts import service
from bot.delivery import Delivery
from bot.deps import Deps
from bot.ids import Action


def _alert_id(body: dict[str, Any]) -> int:
    action = body["actions"][0]
    if action.get("value"):
        return int(action["value"])
    return int(action["block_id"].rsplit(":", 1)[1])


def act(
    deps: Deps, body: dict[str, Any], client: WebClient, work: Callable[[Session, int, str], object]
) -> None:
    """The one path of every alert button: may this person act, then the change in one unit of work,
    then its card update delivered."""
    user_id, alert_id = body["user"]["id"], _alert_id(body)
    is_cs = deps.directory.is_cs(user_id)  # BATON_CS_USERS: users and user groups

    def checked(s: Session) -> object:
        service.ensure_may_act(s, alert_id=alert_id, user_id=user_id, is_cs=is_cs)
        return work(s, alert_id, user_id)

    deps.db.run(checked)  # NotFound, NotAllowed, AlreadyResolved: answered by bot/errors.py
    Delivery(deps.db, client, deps.settings, deps.clock).run(alert_id=alert_id)


def acknowledge(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    act(
        deps,
        body,
        client,
        lambda s, a, u: service.acknowledge(s, alert_id=a, actor=u, clock=deps.clock),
    )


def assign(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    owner = body["actions"][0].get("selected_user")
    if owner:
        act(
            deps,
            body,
            client,
            lambda s, a, u: service.assign_owner(s, alert_id=a, owner=owner, actor=u, clock=deps.clock),
        )


def snooze(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    days, tz = deps.settings.rules.alerts.snooze_days, deps.settings.rules.schedule.timezone
    act(
        deps,
        body,
        client,
        lambda s, a, u: service.snooze(s, alert_id=a, actor=u, clock=deps.clock, days=days, timezone=tz),
    )


def resolve(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    act(deps, body, client, lambda s, a, u: service.resolve(s, alert_id=a, actor=u, clock=deps.clock))


def hand_to_is(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    act(
        deps,
        body,
        client,
        lambda s, a, u: service.hand_to_inside_sales(s, alert_id=a, actor=u, clock=deps.clock),
    )


def register(app: App) -> None:
    app.action(Action.ALERT_ACK)(acknowledge)
    app.action(Action.ALERT_ASSIGN)(assign)
    app.action(Action.ALERT_SNOOZE)(snooze)
    app.action(Action.ALERT_RESOLVE)(resolve)
    app.action(Action.ALERT_HAND_TO_IS)(hand_to_is)
