"""Everything Baton shows about one handoff: the channel card, the full checklist, list and show answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from accounts.tiers import annual_value
from bot.i18n import Translator
from bot.ids import Action, Block, Callback
from bot.text import Mrkdwn, escape, link, mention, slack_date
from bot.views.fields import (
    button,
    context,
    divider,
    fields_section,
    header,
    modal,
    section,
    text_obj,
)
from handoff.checklist import Item, missing_items
from handoff.service import Status
from storage.models import Handoff

TOTAL_ITEMS = len(Item)


def _value(tr: Translator, h: Handoff) -> Mrkdwn:
    arr = annual_value(h.price_amount, h.billing_period)
    return escape(
        tr.t(
            f"value.{h.billing_period}",
            amount=tr.money(h.price_amount, h.currency),
            arr=tr.money(arr, h.currency),
        )
    )


def _tier(tr: Translator, h: Handoff) -> str:
    label = tr.t(f"tier.{h.touch_tier}")
    if h.touch_tier == h.touch_tier_suggested:
        return tr.t("tier.with_note", tier=label, note=tr.t("tier.suggested"))
    return label


def _csm(tr: Translator, h: Handoff) -> Mrkdwn:
    return mention(h.csm_user_id) if h.csm_user_id else escape(tr.t("card.csm_none"))


def _field(label: str, value: Mrkdwn) -> Mrkdwn:
    return Mrkdwn(f"*{escape(label)}*\n{value}")


def checklist_status(tr: Translator, h: Handoff) -> Mrkdwn:
    missing = missing_items(h)
    done = TOTAL_ITEMS - len(missing)
    head = f"*{escape(tr.t('card.checklist', done=done, total=TOTAL_ITEMS))}*"
    if not missing:
        return Mrkdwn(f":white_check_mark: {head} · {escape(tr.t('card.complete'))}")
    names = tr.join([tr.t(f"item.{i.value}") for i in missing])
    return Mrkdwn(f":memo: {head} · {escape(tr.label('card.missing'))}{escape(names)}")


def card(tr: Translator, h: Handoff, *, timezone: str) -> list[dict[str, Any]]:
    """The message posted to the handoff channel and updated in place as the handoff moves. Slack shows
    the accepted time in each reader's zone; where it cannot, the fallback is the team's, with its zone."""
    accepted = h.status == Status.ACCEPTED
    status = tr.t("card.status.accepted" if accepted else "card.status.open")
    status_text = escape(status)
    if accepted and h.accepted_by and h.accepted_at:
        local = h.accepted_at.astimezone(ZoneInfo(timezone))
        when = slack_date(h.accepted_at, f"{tr.day(local.date())} {local:%H:%M %Z}")
        status_text = Mrkdwn(f"{status_text} · {mention(h.accepted_by)} {when}")
    csm = _csm(tr, h)
    blocks: list[dict[str, Any]] = [
        header(("✅ " if accepted else "🤝 ") + tr.t("card.header", account=h.account.name)),
        fields_section(
            [
                _field(tr.t("card.plan"), escape(h.plan)),
                _field(tr.t("card.value"), _value(tr, h)),
                _field(tr.t("card.seats"), escape(h.seats)),
                _field(tr.t("card.term"), escape(f"{tr.day(h.contract_start)} → {tr.day(h.renewal_date)}")),
                _field(tr.t("card.tier"), escape(_tier(tr, h))),
                _field(tr.t("card.handed_off_by"), mention(h.handed_off_by)),
                _field(tr.t("card.csm"), csm),
                _field(tr.t("card.status"), status_text),
            ]
        ),
    ]
    why = "\n".join(escape(x) for x in (h.why_bought, h.problem) if x)
    if why:
        blocks.append(section(Mrkdwn(f"*{escape(tr.t('card.why'))}*\n{why}")))
    blocks.append(context(checklist_status(tr, h)))
    elements = []
    if not accepted:
        elements.append(button(tr.t("card.accept"), Action.ACCEPT, str(h.id), style="primary"))
    elements.append(
        {
            "type": "users_select",
            "action_id": Action.ASSIGN,
            "placeholder": text_obj(tr.t("card.assign"), 150),
        }
        | ({"initial_user": h.csm_user_id} if h.csm_user_id else {})
    )
    elements.append(button(tr.t("card.ask"), Action.ASK, str(h.id)))
    elements.append(button(tr.t("card.view"), Action.VIEW, str(h.id)))
    # The block id carries the handoff id, so the users_select (which has no value) knows its handoff.
    blocks.append({"type": "actions", "block_id": f"{Block.CARD_ACTIONS}:{h.id}", "elements": elements})
    return blocks


def card_text(tr: Translator, h: Handoff) -> str:
    """Notification / fallback text for the card."""
    return escape(tr.t("card.header", account=h.account.name))


def _long(tr: Translator, key: str, value: str | None) -> dict[str, Any]:
    return section(_field(tr.t(f"field.{key}"), escape(value) if value else Mrkdwn("—")))


def checklist_blocks(tr: Translator, h: Handoff) -> list[dict[str, Any]]:
    """The whole checklist, four groups; fewer than 30 blocks so it fits a DM as well as a modal."""
    people = []
    for p in h.stakeholders:
        if p.slack_user_id:
            people.append(mention(p.slack_user_id))
        else:
            parts = [escape(p.name or "")] + [escape(x) for x in (p.role, p.email) if x]
            people.append(Mrkdwn(" · ".join(parts)))
    stakeholders = (
        Mrkdwn("\n".join(f"• {p}" for p in people)) if people else escape(tr.t("card.stakeholders_none"))
    )
    return [
        header(tr.t("card.header", account=h.account.name)),
        context(checklist_status(tr, h)),
        header(tr.t("section.challenges")),
        _long(tr, "why_bought", h.why_bought),
        _long(tr, "problem", h.problem),
        _long(tr, "success_criteria", h.success_criteria),
        header(tr.t("section.contract")),
        fields_section(
            [
                _field(tr.t("field.plan"), escape(h.plan)),
                _field(tr.t("card.value"), _value(tr, h)),
                _field(tr.t("field.seats"), escape(h.seats)),
                _field(tr.t("card.tier"), escape(_tier(tr, h))),
                _field(tr.t("field.contract_start"), escape(tr.day(h.contract_start))),
                _field(tr.t("field.renewal_date"), escape(tr.day(h.renewal_date))),
            ]
        ),
        _long(tr, "addons", h.addons),
        header(tr.t("section.background")),
        _long(tr, "decision_process", h.decision_process),
        _long(tr, "decision_maker", h.decision_maker),
        _long(tr, "competitors", h.competitors),
        _long(tr, "why_won", h.why_won),
        section(_field(tr.t("item.stakeholders"), stakeholders)),
        header(tr.t("section.history")),
        _long(tr, "discussion", h.discussion),
        _long(tr, "meetings", h.meetings),
        _long(tr, "concerns", h.concerns),
        _long(tr, "open_questions", h.open_questions),
        divider(),
        context(
            Mrkdwn(
                f"{escape(tr.label('card.handed_off_by'))}{mention(h.handed_off_by)} · "
                f"{escape(tr.label('card.csm'))}{_csm(tr, h)}"
            )
        ),
    ]


def checklist_modal(tr: Translator, h: Handoff) -> dict[str, Any]:
    title = tr.t("modal.title.checklist")
    return modal(Callback.CHECKLIST, title, checklist_blocks(tr, h), close=tr.t("modal.close"))


def question_modal(tr: Translator, handoff_id: int, callback_id: str) -> dict[str, Any]:
    return modal(
        callback_id,
        tr.t("modal.title.question"),
        [
            {
                "type": "input",
                "block_id": Block.QUESTION,
                "label": text_obj(tr.t("field.question"), 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": Block.QUESTION,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": text_obj(tr.t("placeholder.question"), 150),
                },
            }
        ],
        submit=tr.t("modal.send"),
        close=tr.t("modal.cancel"),
        private_metadata=str(handoff_id),
    )


def list_blocks(
    tr: Translator, handoffs: Sequence[Handoff], total: int | None = None
) -> list[dict[str, Any]]:
    """`/handoff list` and App Home: one line each, linking to the card; at most 40, to fit a message."""
    if not handoffs:
        return [section(tr.m("list.empty"))]
    shown = list(handoffs[:40])
    blocks: list[dict[str, Any]] = [header(tr.t("list.title"))]
    for h in shown:
        card_link = link(h.permalink, h.account.name)
        status = tr.t("card.status.accepted" if h.status == Status.ACCEPTED else "card.status.open")
        done = TOTAL_ITEMS - len(missing_items(h))
        progress = escape(tr.t("card.checklist", done=done, total=TOTAL_ITEMS))
        csm = f"{escape(tr.label('card.csm'))}{_csm(tr, h)}"
        blocks.append(context(Mrkdwn(f"{card_link} · {escape(status)} · {progress} · {csm}")))
    total = len(handoffs) if total is None else total
    if total > len(shown):
        blocks.append(context(tr.m("list.more", shown=len(shown), total=total)))
    return blocks


def assigned_dm(tr: Translator, h: Handoff, assigner: str) -> tuple[str, list[dict[str, Any]]]:
    """The newly assigned CSM gets the whole handoff, in their own language."""
    intro = tr.render("assigned_dm.j2", assigner=mention(assigner), account=h.account.name)
    return intro, [section(intro), *checklist_blocks(tr, h)]


def nudge(tr: Translator, h: Handoff) -> tuple[str, list[dict[str, Any]]] | None:
    """Which checklist items are still empty, with a button to complete them; whether the card is in
    the channel yet is said as it is. None when nothing is missing."""
    missing = missing_items(h)
    if not missing:
        return None
    text = tr.render(
        "nudge.j2",
        account=h.account.name,
        missing=[tr.t(f"item.{i.value}") for i in missing],
        posted=bool(h.message_ts),
    )
    blocks = [
        section(text),
        {"type": "actions", "elements": [button(tr.t("card.edit"), Action.EDIT, str(h.id), "primary")]},
    ]
    return text, blocks
