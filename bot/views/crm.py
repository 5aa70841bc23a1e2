"""The won deal's messages: the "Start handoff" DM to the deal's owner (or, when Slack does not know
the owner, to the sales lead), the one nudge, and the one word to the sales lead. Every value from
the CRM reaches mrkdwn through the translator's escaping (bot/text.py)."""

from __future__ import annotations

from typing import Any

from bot.i18n import Translator
from bot.ids import Action
from bot.text import Mrkdwn, escape, link, mention
from bot.views.fields import button, context, section
from crm.model import WonDeal

CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


def _facts(tr: Translator, deal: WonDeal, owner: str | None) -> Mrkdwn:
    who = mention(owner) if owner else escape(deal.owner_email or "-")
    facts = tr.m(
        "crm.deal_facts",
        account=deal.account_name or "-",
        closed=tr.day(deal.close_date),
        owner=Mrkdwn(who),
    )
    crm = CRM_NAMES.get(deal.crm, deal.crm)
    if deal.url:
        return Mrkdwn(f"{facts} · {link(deal.url, tr.t('crm.open_deal', crm=crm))}")
    return facts


def _blocks(tr: Translator, text: Mrkdwn, deal: WonDeal, crm_deal_id: int, owner: str | None) -> list[Any]:
    start = button(tr.t("crm.start"), Action.CRM_START, str(crm_deal_id), "primary")
    return [
        section(text),
        context(_facts(tr, deal, owner)),
        {"type": "actions", "block_id": f"crm_deal:{crm_deal_id}", "elements": [start]},
    ]


def won_deal_started(
    tr: Translator, deal: WonDeal, by: str | None, card: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """The DM once its handoff is submitted: the same facts, no button, a link to the card."""
    text = tr.m(
        "crm.started",
        deal=deal.name,
        by=Mrkdwn(mention(by)) if by else "-",
        card=Mrkdwn(link(card, tr.t("crm.started_card"))) if card else tr.t("crm.started_card"),
    )
    return str(text), [section(text), context(_facts(tr, deal, by))]


def _common(tr: Translator, deal: WonDeal) -> dict[str, Any]:
    return {"deal": deal.name, "crm": CRM_NAMES.get(deal.crm, deal.crm)}


def won_deal_dm(
    tr: Translator, deal: WonDeal, crm_deal_id: int, owner: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """To ``owner`` (a Slack user id); with ``owner`` None, the sales lead's version saying why."""
    amount = tr.money(deal.amount, deal.currency) if deal.amount is not None else None
    text = tr.render(
        "crm_won_deal.j2",
        owner=owner,
        email=deal.owner_email or "-",
        amount=amount,
        closed=tr.day(deal.close_date) if deal.close_date else None,
        **_common(tr, deal),
    )
    return text, _blocks(tr, text, deal, crm_deal_id, owner)


def nudge_dm(
    tr: Translator, deal: WonDeal, crm_deal_id: int, owner: str, hours: int
) -> tuple[str, list[dict[str, Any]]]:
    text = tr.render("crm_nudge.j2", hours=hours, **_common(tr, deal))
    return text, _blocks(tr, text, deal, crm_deal_id, owner)


def lead_note(
    tr: Translator, deal: WonDeal, crm_deal_id: int, owner: str | None, hours: int
) -> tuple[str, list[dict[str, Any]]]:
    """The sales lead told once that the owner has not started the handoff (reminded or unreachable)."""
    who = mention(owner) if owner else escape(deal.owner_email or "-")
    text = tr.render("crm_lead.j2", hours=hours, owner=Mrkdwn(who), reminded=bool(owner), **_common(tr, deal))
    return text, _blocks(tr, text, deal, crm_deal_id, owner)


ACTIVITY_KINDS = ("note", "meeting", "call", "email", "task")


def activity_kinds(tr: Translator) -> dict[str, str]:
    """The CRM's activity kinds in the team's words, for the prefilled communication history."""
    return {k: tr.t(f"crm.activity.{k}") for k in ACTIVITY_KINDS}
