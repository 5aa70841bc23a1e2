"""The handoff modal: built from one field table, and parsed back from ``view.state`` with the same
table, so a field cannot be shown without being read (or read without being shown)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from accounts.names import NAME_MAX
from accounts.tiers import BillingPeriod, Tier
from bot.i18n import Translator
from bot.ids import Callback
from bot.text import Mrkdwn
from bot.views.fields import header, input_block, modal, option, section, text_obj
from handoff.checklist import (
    AMOUNT_MAX,
    CURRENCIES,
    REQUIRED,
    SEATS_MAX,
    TEXT_MAX,
    FieldError,
    HandoffForm,
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | long | int | decimal | currency | billing | tier | date | user | users
    section: str


FIELDS: tuple[Field, ...] = (
    Field("account_name", "text", "challenges"),
    Field("why_bought", "long", "challenges"),
    Field("problem", "long", "challenges"),
    Field("success_criteria", "long", "challenges"),
    Field("plan", "text", "contract"),
    Field("seats", "int", "contract"),
    Field("price_amount", "decimal", "contract"),
    Field("currency", "currency", "contract"),
    Field("billing_period", "billing", "contract"),
    Field("contract_start", "date", "contract"),
    Field("renewal_date", "date", "contract"),
    Field("addons", "long", "contract"),
    Field("decision_process", "long", "background"),
    Field("decision_maker", "text", "background"),
    Field("competitors", "long", "background"),
    Field("why_won", "long", "background"),
    Field("stakeholder_users", "users", "background"),
    Field("stakeholders_external", "long", "background"),
    Field("discussion", "long", "history"),
    Field("meetings", "long", "history"),
    Field("concerns", "long", "history"),
    Field("open_questions", "long", "history"),
    Field("handed_off_by", "user", "owners"),
    Field("csm_user_id", "user", "owners"),
    Field("touch_tier", "tier", "owners"),
)
SECTIONS = ("challenges", "contract", "background", "history", "owners")
_HINTS = {"price_amount", "stakeholders_external", "touch_tier"}
_PLACEHOLDERS = {"stakeholders_external"}


@dataclass(frozen=True)
class Metadata:
    """What the submission needs to know beyond the fields; kept in ``private_metadata``."""

    mode: str  # "new" | "edit" | "crm" (new, started from a won deal)
    locale: str
    channel_id: str | None = None
    handoff_id: int | None = None
    revision: int | None = None
    crm_deal: int | None = None  # crm_deals.id the handoff is started from: linked on submit

    def dump(self) -> str:
        d = {"m": self.mode, "l": self.locale, "c": self.channel_id, "h": self.handoff_id, "v": self.revision}
        if self.crm_deal is not None:
            d["d"] = self.crm_deal
        return json.dumps(d)

    @classmethod
    def load(cls, raw: str) -> Metadata:
        d = json.loads(raw or "{}")
        return cls(
            mode=d.get("m", "new"),
            locale=d.get("l", "en"),
            channel_id=d.get("c"),
            handoff_id=d.get("h"),
            revision=d.get("v"),
            crm_deal=d.get("d"),
        )


def _element(f: Field, tr: Translator, value: Any) -> dict[str, Any]:
    aid = f.name
    if f.kind in ("text", "long"):
        limit = TEXT_MAX if f.kind == "long" else NAME_MAX
        el: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": aid,
            "multiline": f.kind == "long",
            "max_length": limit,
        }
        if value:
            el["initial_value"] = str(value)[:limit]  # Slack refuses a view whose prefill is too long
        if f.name in _PLACEHOLDERS:
            el["placeholder"] = text_obj(tr.t(f"placeholder.{f.name}"), 150)
        return el
    if f.kind in ("int", "decimal"):
        el = {
            "type": "number_input",
            "action_id": aid,
            "is_decimal_allowed": f.kind == "decimal",
            "min_value": "1" if f.kind == "int" else "0",
            "max_value": str(SEATS_MAX) if f.kind == "int" else str(AMOUNT_MAX - 1),
        }
        if value is not None:
            el["initial_value"] = str(value)
        return el
    if f.kind in ("currency", "billing", "tier"):
        if f.kind == "currency":
            opts = [option(c, c) for c in CURRENCIES]
        elif f.kind == "billing":
            opts = [option(tr.t(f"billing.{b}"), b.value) for b in BillingPeriod]
        else:
            opts = [option(tr.t(f"tier.{t}"), t.value) for t in Tier]
        el = {"type": "static_select", "action_id": aid, "options": opts}
        chosen = [o for o in opts if o["value"] == value]
        if chosen:
            el["initial_option"] = chosen[0]
        return el
    if f.kind == "date":
        el = {"type": "datepicker", "action_id": aid}
        if value:
            el["initial_date"] = value.isoformat()
        return el
    if f.kind == "user":
        el = {"type": "users_select", "action_id": aid}
        if value:
            el["initial_user"] = value
        return el
    if f.kind == "users":
        el = {"type": "multi_users_select", "action_id": aid}
        if value:
            el["initial_users"] = list(value)
        return el
    raise ValueError(f.kind)


def build(tr: Translator, form: HandoffForm, meta: Metadata) -> dict[str, Any]:
    """The modal for a new handoff (``form`` prefilled with what is known) or for an edit."""
    blocks: list[dict[str, Any]] = [section(Mrkdwn(tr.m("modal.intro")))]
    for sec in SECTIONS:
        blocks.append(header(tr.t(f"section.{sec}")))
        for f in (f for f in FIELDS if f.section == sec):
            blocks.append(
                input_block(
                    f.name,
                    tr.t(f"field.{f.name}"),
                    _element(f, tr, getattr(form, f.name)),
                    optional=f.name not in REQUIRED,
                    hint=tr.t(f"hint.{f.name}") if f.name in _HINTS else None,
                )
            )
    edit = meta.mode == "edit"
    callback = {"edit": Callback.HANDOFF_EDIT, "crm": Callback.HANDOFF_CRM}.get(
        meta.mode, Callback.HANDOFF_NEW
    )
    return modal(
        callback,
        tr.t("modal.title.edit" if edit else "modal.title.new"),
        blocks,
        submit=tr.t("modal.save" if edit else "modal.submit"),
        close=tr.t("modal.cancel"),
        private_metadata=meta.dump(),
    )


def parse(state_values: dict[str, Any]) -> tuple[HandoffForm, list[FieldError]]:
    """Read ``view.state.values`` into a form; values that cannot be typed become field errors."""
    form = HandoffForm()
    errors: list[FieldError] = []
    for f in FIELDS:
        raw = (state_values.get(f.name) or {}).get(f.name) or {}
        value: Any = None
        if f.kind in ("text", "long", "int", "decimal"):
            text = (raw.get("value") or "").strip()
            if not text:
                value = None
            elif f.kind == "int":
                try:
                    value = int(text)
                except ValueError:
                    errors.append(FieldError(f.name, "not_a_whole_number"))
            elif f.kind == "decimal":
                try:
                    value = Decimal(text.replace(",", ""))
                    if not value.is_finite():
                        raise InvalidOperation
                except InvalidOperation:
                    errors.append(FieldError(f.name, "not_a_number"))
                    value = None
            else:
                value = text
        elif f.kind in ("currency", "billing", "tier"):
            value = (raw.get("selected_option") or {}).get("value")
        elif f.kind == "date":
            if raw.get("selected_date"):
                try:
                    value = date.fromisoformat(raw["selected_date"])
                except ValueError:
                    errors.append(FieldError(f.name, "not_a_date"))
        elif f.kind == "user":
            value = raw.get("selected_user") or None
        elif f.kind == "users":
            value = list(raw.get("selected_users") or [])
        setattr(form, f.name, value)
    return form, errors


def error_map(tr: Translator, errors: list[FieldError]) -> dict[str, str]:
    """``response_action: errors`` wants one message per block id: the first problem of each field."""
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(e.field, tr.t(f"error.{e.code}", **e.params))
    return out
