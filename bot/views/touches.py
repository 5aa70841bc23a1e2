"""The daily reminder message (touches due, QBRs, renewals) and the "Log touch" modal it opens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.i18n import Translator
from bot.ids import Action, Block, Callback
from bot.text import Mrkdwn, escape
from bot.views.fields import button, context, header, input_block, modal, option, section, text_obj
from handoff.cadence import Kind, Milestone

MAX_LINES = 45  # a header, the lines and a "more" note stay well inside 50 blocks


def _line(tr: Translator, r: dict[str, Any], today: date | None) -> Mrkdwn:
    stage, due = r["stage"], tr.day(date.fromisoformat(r["due"]), today=today)
    kind = tr.t(f"touch.kind.{r['touch']}")
    what = tr.t(f"reminder.{stage}", kind=kind, date=due, days=r.get("days_left"))
    icon = "🔴" if stage.endswith("overdue") else "🔁" if stage == "renewal" else "📅"
    tier = tr.t(f"tier.{r['tier']}")
    return Mrkdwn(f"{icon} *{escape(r['account'])}* · {escape(what)} · _{escape(tier)}_")


def log_value(account_id: int, kind: str) -> str:
    return json.dumps({"a": account_id, "k": kind}, separators=(",", ":"))


def reminder_blocks(tr: Translator, payload: dict[str, Any]) -> list[dict[str, Any]]:
    items = payload["reminders"]
    title = "reminder.header" if payload.get("recipient") else "reminder.header_unowned"
    part, parts = payload.get("part", 1), payload.get("parts", 1)
    today = date.fromisoformat(payload["day"]) if payload.get("day") else None
    blocks = [header(tr.t(title) + (f" ({part}/{parts})" if parts > 1 else ""))]
    for r in items[:MAX_LINES]:
        block = section(_line(tr, r, today))
        block["accessory"] = button(
            tr.t("touch.log"), Action.LOG_TOUCH, log_value(r["account_id"], r["touch"])
        )
        blocks.append(block)
    if len(items) > MAX_LINES:
        blocks.append(context(tr.m("reminder.more", count=len(items) - MAX_LINES)))
    return blocks


def reminder_text(tr: Translator, payload: dict[str, Any]) -> str:
    return tr.t("reminder.text", count=len(payload["reminders"]))


def unknown_csm_text(tr: Translator, payload: dict[str, Any]) -> str:
    names = tr.t("csm_unknown.separator").join(payload["accounts"])
    if payload.get("more"):
        names += tr.t("csm_unknown.more", count=payload["more"])
    return tr.t("csm_unknown.text", email=payload["email"], accounts=names)


def unknown_csm_blocks(tr: Translator, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The one report of a csm_email Slack does not know, naming it and the accounts it leaves
    without a CSM (their reminders come to the handoff channel meanwhile)."""
    return [
        section(Mrkdwn(escape(unknown_csm_text(tr, payload)))),
        context(tr.m("csm_unknown.fix")),
    ]


@dataclass(frozen=True)
class TouchMeta:
    account_id: int
    locale: str

    def dump(self) -> str:
        return json.dumps({"a": self.account_id, "l": self.locale})

    @classmethod
    def load(cls, raw: str) -> TouchMeta:
        d = json.loads(raw)
        return cls(int(d["a"]), str(d["l"]))


def touch_modal(tr: Translator, *, account_id: int, account: str, kind: str, today: date) -> dict[str, Any]:
    kinds = [option(tr.t(f"touch.kind.{k}"), k) for k in Kind]
    chosen = next((o for o in kinds if o["value"] == kind), kinds[0])
    blocks = [
        section(tr.m("touch.modal.account", account=account)),
        input_block(
            Block.TOUCH_KIND,
            tr.t("touch.modal.kind"),
            {
                "type": "static_select",
                "action_id": Block.TOUCH_KIND,
                "options": kinds,
                "initial_option": chosen,
            },
        ),
        input_block(
            Block.TOUCH_DAY,
            tr.t("touch.modal.day"),
            {"type": "datepicker", "action_id": Block.TOUCH_DAY, "initial_date": today.isoformat()},
        ),
        input_block(
            Block.TOUCH_NOTE,
            tr.t("touch.modal.note"),
            {
                "type": "plain_text_input",
                "action_id": Block.TOUCH_NOTE,
                "multiline": True,
                "max_length": 2000,
                "placeholder": text_obj(tr.t("touch.modal.note_hint"), 150),
            },
            optional=True,
        ),
    ]
    return modal(
        Callback.TOUCH,
        tr.t("touch.modal.title"),
        blocks,
        submit=tr.t("touch.modal.submit"),
        private_metadata=TouchMeta(account_id, tr.locale).dump(),
    )


def parse_touch_modal(values: dict[str, Any]) -> tuple[Kind, date | None, str]:
    """(kind, day, note) from the modal's state; the day is None when the picker was cleared."""

    def value(block: str) -> dict[str, Any]:
        return (values.get(block) or {}).get(block) or {}

    kind = Kind((value(Block.TOUCH_KIND).get("selected_option") or {}).get("value") or Kind.CHECK_IN)
    raw_day = value(Block.TOUCH_DAY).get("selected_date")
    return kind, date.fromisoformat(raw_day) if raw_day else None, value(Block.TOUCH_NOTE).get("value") or ""


def logged_text(
    tr: Translator, account: str, kind: str, milestones: list[Milestone], today: date | None = None
) -> str:
    """What the CSM reads back after logging: progress through onboarding and the next touch due."""
    if not milestones:
        return tr.t("touch.no_handoff", kind=tr.t(f"touch.kind.{kind}"), account=account)
    done = sum(m.done_on is not None for m in milestones)
    text = tr.t(
        "touch.logged", kind=tr.t(f"touch.kind.{kind}"), account=account, done=done, total=len(milestones)
    )
    nxt = next((m for m in milestones if m.done_on is None), None)
    if nxt is not None:
        text += " " + tr.t(
            "touch.next", kind=tr.t(f"touch.kind.{nxt.kind}"), date=tr.day(nxt.due, today=today)
        )
    return text
