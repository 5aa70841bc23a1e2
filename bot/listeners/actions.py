"""Buttons and selects on the handoff card and in the nudge DM."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.deps import Deps
from bot.ids import Action, Callback
from bot.listeners.common import edit_view, ephemeral
from bot.publish import Publisher
from bot.respond import answer_request
from bot.text import escape, mention
from bot.views.handoff_card import checklist_modal, question_modal
from handoff import service
from storage.models import Handoff


def _handoff_id(body: dict[str, Any]) -> int:
    action = body["actions"][0]
    if action.get("value"):
        return int(action["value"])
    return int(action["block_id"].rsplit(":", 1)[1])  # users_select carries no value: the block id does


def accept(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, deps: Deps) -> None:
    ack()
    user_id = body["user"]["id"]
    tr = deps.tr_for(user_id)
    actor, handoff_id = deps.actor(user_id), _handoff_id(body)
    note = deps.channel_tr.render("accepted.j2", actor=mention(user_id), csm=None)

    def work(s: Session) -> tuple[Handoff, bool]:
        h, changed = service.accept(s, handoff_id=handoff_id, actor=actor, clock=deps.clock)
        if changed:
            service.queue_change(s, h, deps.clock(), note)
        return h, changed

    h, changed = deps.db.run(work)  # NotFound, NotAllowed: answered by bot/errors.py
    if not changed:
        text = tr.m("notice.already_accepted", user=mention(h.accepted_by))
        answer_request(deps, client, respond, body, ephemeral(text))
        return
    Publisher(client, deps).deliver(handoff_id=h.id)


def assign(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, deps: Deps) -> None:
    ack()
    user_id = body["user"]["id"]
    csm = body["actions"][0].get("selected_user")
    if not csm:
        return
    actor, handoff_id = deps.actor(user_id), _handoff_id(body)

    def work(s: Session) -> tuple[Handoff, bool]:
        h, changed, accepted_now = service.assign(
            s, handoff_id=handoff_id, csm_user_id=csm, actor=actor, clock=deps.clock
        )
        if changed:
            note = "accepted.j2" if accepted_now else "assigned.j2"
            now = deps.clock()
            service.queue_change(
                s, h, now, deps.channel_tr.render(note, actor=mention(user_id), csm=mention(csm))
            )
            service.queue_assigned_dm(s, h, csm, user_id, now)
        return h, changed

    h, changed = deps.db.run(work)  # NotFound, NotAllowed: answered by bot/errors.py
    if not changed:
        return
    Publisher(client, deps).deliver(handoff_id=h.id)


def ask(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    tr, handoff_id = deps.tr_for(body["user"]["id"]), _handoff_id(body)
    with deps.db.session() as s:
        service.get(s, handoff_id)  # a question about no handoff is refused now, not after typing it
    client.views_open(trigger_id=body["trigger_id"], view=question_modal(tr, handoff_id, Callback.QUESTION))


def view(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    ack()
    tr = deps.tr_for(body["user"]["id"])
    with deps.db.session() as s:
        h = service.get(s, _handoff_id(body))
        modal = checklist_modal(tr, h)
    client.views_open(trigger_id=body["trigger_id"], view=modal)


def edit(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, deps: Deps) -> None:
    ack()
    user_id = body["user"]["id"]
    tr = deps.tr_for(user_id)
    with deps.db.session() as s:
        modal, refusal = edit_view(s, deps, handoff_id=_handoff_id(body), user_id=user_id, tr=tr)
    if modal is not None:
        client.views_open(trigger_id=body["trigger_id"], view=modal)
    elif refusal:
        answer_request(deps, client, respond, body, ephemeral(escape(refusal)))


def register(app: App) -> None:
    app.action(Action.ACCEPT)(accept)
    app.action(Action.ASSIGN)(assign)
    app.action(Action.ASK)(ask)
    app.action(Action.VIEW)(view)
    app.action(Action.EDIT)(edit)
