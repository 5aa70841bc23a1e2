"""A won CRM deal's "Start handoff" button and the modal it opens.

The button opens the handoff modal prefilled from the deal as stored in ``crm_deals`` (no CRM call, so
views.open makes Slack's 3-second trigger window); the deal's row id rides in ``private_metadata``.
The submission is the new-handoff one (bot/listeners/views.py) plus one step: the deal is linked to the
new handoff before its card is queued, so the CRM write-back is queued with it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.deps import Deps
from bot.ids import Action, Callback
from bot.listeners.common import ephemeral
from bot.listeners.views import submit_handoff
from bot.respond import answer_request
from bot.views import handoff_form
from bot.views.crm import activity_kinds
from crm.model import WonDeal
from crm.model import handoff_form as form_from_deal
from storage.models import CrmDeal


def start(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, deps: Deps) -> None:
    """Acked first; then one read of the stored deal, and views.open with the trigger."""
    ack()
    user_id = body["user"]["id"]
    tr = deps.tr_for(user_id)
    raw = str(body["actions"][0].get("value") or "")
    with deps.db.session() as s:
        row = s.get(CrmDeal, int(raw)) if raw.isdigit() else None
        deal = WonDeal.from_json(row.deal) if row is not None else None
        row_id, started = (row.id, row.handoff_id is not None) if row is not None else (None, False)
    if deal is None or row_id is None or started:
        refusal = tr.t("crm.already_started" if started else "crm.deal_gone")
        answer_request(deps, client, respond, body, ephemeral(refusal))
        return
    form = form_from_deal(deal, handed_off_by=user_id, kinds=activity_kinds(tr))
    meta = handoff_form.Metadata(mode="crm", locale=tr.locale, crm_deal=row_id)
    client.views_open(trigger_id=body["trigger_id"], view=handoff_form.build(tr, form, meta))


def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps) -> None:
    """As a new handoff's submission, with the deal linked in the same unit of work (views.py's
    ``submit_handoff``); a deal another submission took first is refused inline, nothing saved."""
    submit_handoff(ack, body, view, client, deps, from_deal=True)


def register(app: App) -> None:
    app.action(Action.CRM_START)(start)
    app.view(Callback.HANDOFF_CRM)(submit)
