"""Modal submissions: new handoff, edit, question. Invalid input is answered inline and nothing is saved."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.deps import Deps
from bot.i18n import translator
from bot.ids import Block, Callback
from bot.listeners.common import field_label, request_key
from bot.publish import Publisher
from bot.text import mention
from bot.views import handoff_form
from crm.sync import WON_DEAL_DM
from handoff import service
from handoff.checklist import FieldError
from handoff.crm_link import link_deal, queue_writeback
from storage import repeats
from storage.outbox import enqueue


def submit_new(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps) -> None:
    """A new handoff from /handoff's modal (see ``submit_handoff``)."""
    submit_handoff(ack, body, view, client, deps, from_deal=False)


def submit_handoff(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps, *, from_deal: bool
) -> None:
    """Validated and stored in one unit of work before the ack (its errors are shown inline, so they
    must be known by then), with the card, nudge and DM queued in it; delivered after the ack.
    ``from_deal`` (the won deal's modal, bot/listeners/crm.py): the deal in ``private_metadata`` is
    linked before the card is queued, so the CRM write-back is queued with it; a deal another
    submission took first is refused inline and nothing is saved."""
    user_id = body["user"]["id"]
    meta = handoff_form.Metadata.load(view.get("private_metadata", ""))
    tr = translator(meta.locale)
    form, parse_errors = handoff_form.parse(view["state"]["values"])
    key = request_key(Callback.HANDOFF_CRM if from_deal else Callback.HANDOFF_NEW, body)
    try:
        with deps.db.session() as s:
            repeats.claim(s, key, deps.clock())
            h = service.create(
                s,
                form=form,
                actor=deps.actor(user_id),
                clock=deps.clock,
                rules=deps.settings.rules,
                input_errors=parse_errors,
            )
            if from_deal and (not isinstance(meta.crm_deal, int) or not link_deal(s, meta.crm_deal, h)):
                raise service.Invalid([FieldError("account_name", "deal_taken")])
            handoff_id, now = h.id, deps.clock()
            service.queue_card(s, h, deps.settings.handoff_channel or meta.channel_id, now)
            if from_deal:
                queue_writeback(s, h, now)  # queued by queue_card when there is a channel; else here
                enqueue(s, None, WON_DEAL_DM, now, crm_deal=meta.crm_deal, step="started")  # the DM edited
            service.queue_nudge(s, h, now)
            if h.csm_user_id:
                service.queue_assigned_dm(s, h, h.csm_user_id, user_id, now)
    except service.Invalid as exc:
        ack(response_action="errors", errors=handoff_form.error_map(tr, exc.errors))
        return
    except repeats.Repeated:  # a retry or a double submit: the first one is saved and posted
        ack()
        return
    ack()
    pub = Publisher(client, deps)
    pub.deliver(handoff_id=handoff_id)
    pub.tell_card_state(handoff_id, user_id, tr)


def submit_edit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps) -> None:
    """The edit checked against the revision the form was opened on, stored with its card update and
    thread note in one unit of work before the ack; delivered after it."""
    user_id = body["user"]["id"]
    meta = handoff_form.Metadata.load(view.get("private_metadata", ""))
    tr = translator(meta.locale)
    form, parse_errors = handoff_form.parse(view["state"]["values"])
    assert meta.handoff_id is not None
    revision = meta.revision  # the checklist revision the form was opened on: the stale-edit check
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:  # forged or lost
        ack(response_action="errors", errors={"account_name": tr.t("error.no_version")})
        return
    key = request_key(Callback.HANDOFF_EDIT, body)
    try:
        with deps.db.session() as s:
            repeats.claim(s, key, deps.clock())
            before = service.get(s, meta.handoff_id)
            before_csm, was_posted = before.csm_user_id, before.message_ts is not None
            h, changed = service.update(
                s,
                handoff_id=meta.handoff_id,
                expected_revision=revision,
                form=form,
                actor=deps.actor(user_id),
                clock=deps.clock,
                rules=deps.settings.rules,
                input_errors=parse_errors,
            )
            if changed:
                now, ctr = deps.clock(), deps.channel_tr
                if not was_posted:  # the first post failed (no channel, bot not invited): again
                    service.queue_card(s, h, deps.settings.handoff_channel or meta.channel_id, now)
                note = ctr.render(
                    "edited.j2", editor=mention(user_id), fields=[field_label(ctr, f) for f in changed]
                )
                service.queue_change(s, h, now, note)
                if h.csm_user_id and h.csm_user_id != before_csm:
                    service.queue_assigned_dm(s, h, h.csm_user_id, user_id, now)
    except service.Invalid as exc:
        ack(response_action="errors", errors=handoff_form.error_map(tr, exc.errors))
        return
    except (service.Conflict, service.NotAllowed) as exc:
        key = "refuse.not_editor" if isinstance(exc, service.NotAllowed) else "error.edited_meanwhile"
        ack(response_action="errors", errors={"account_name": tr.t(key)})
        return
    except repeats.Repeated:
        ack()
        return
    ack()
    if not changed:
        return
    Publisher(client, deps).deliver(handoff_id=h.id)


def submit_question(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps
) -> None:
    """The question recorded and queued for the card's thread before the ack; after it, delivered and
    the asker told where it went."""
    user_id = body["user"]["id"]
    tr = deps.tr_for(user_id)
    text = ((view["state"]["values"].get(Block.QUESTION) or {}).get(Block.QUESTION) or {}).get("value") or ""
    key = request_key(Callback.QUESTION, body)
    try:
        with deps.db.session() as s:
            repeats.claim(s, key, deps.clock())
            h = service.record_question(
                s,
                handoff_id=int(view["private_metadata"]),
                actor=deps.actor(user_id),
                text=text,
                clock=deps.clock,
            )
            asker, submitter = mention(user_id), mention(h.submitted_by)
            note = deps.channel_tr.render("question.j2", asker=asker, submitter=submitter, text=text.strip())
            row = service.queue_question(s, h, note, deps.clock())
            s.flush()
            row_id = row.id
    except service.Invalid:
        ack(response_action="errors", errors={Block.QUESTION: tr.t("error.required")})
        return
    except repeats.Repeated:  # posted once already
        ack()
        return
    ack()
    pub = Publisher(client, deps)
    pub.deliver(handoff_id=h.id)
    with deps.db.session() as s:  # where the question went, read once delivery has tried
        outcome = pub.question_outcome(s, row_id)
        h = service.get(s, h.id)
    pub.ephemeral(h, user_id, tr.t(outcome))


def register(app: App) -> None:
    app.view(Callback.HANDOFF_NEW)(submit_new)
    app.view(Callback.HANDOFF_EDIT)(submit_edit)
    app.view(Callback.QUESTION)(submit_question)
