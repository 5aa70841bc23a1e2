"""Logging a touch from a reminder DM or the Home tab ("Log touch" opens a modal)."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.deps import Deps
from bot.i18n import translator
from bot.ids import Action, Block, Callback
from bot.listeners.commands import help_text
from bot.listeners.common import request_key
from bot.listeners.home import publish_home
from bot.publish import Publisher
from bot.views.touches import TouchMeta, logged_text, parse_touch_modal, touch_modal
from clock import local_date
from handoff import cadence, service
from storage import repeats
from storage.models import Account
from storage.outbox import enqueue


def open_log(ack: Ack, body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    """ "Log touch" on a reminder or the Home tab: the modal, or a DM saying why not. Decided in one
    read; the DM (a write of its own, through the outbox) and the modal come after it."""
    ack()
    user_id = body["user"]["id"]
    tr = deps.tr_for(user_id)
    value = json.loads(body["actions"][0]["value"])
    tz = deps.settings.rules.schedule.timezone
    view, refusal = None, None
    with deps.db.session() as s:
        account = s.get(Account, int(value["a"]))
        if account is None:
            refusal = tr.t("touch.error.gone")
        elif not cadence.may_log_touch(s, account, deps.actor(user_id)):
            refusal = tr.t("touch.refuse", account=account.name)
        else:
            view = touch_modal(
                tr,
                account_id=account.id,
                account=account.name,
                kind=str(value.get("k") or "check_in"),
                today=local_date(deps.clock, tz),
            )
    if refusal is not None:
        Publisher(client, deps).notice(user_id, refusal)
    else:
        client.views_open(trigger_id=body["trigger_id"], view=view)


def submit_log(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps) -> None:
    user_id = body["user"]["id"]
    meta = TouchMeta.load(view.get("private_metadata", ""))
    tr = translator(meta.locale)
    kind, day, note = parse_touch_modal(view["state"]["values"])
    tz = deps.settings.rules.schedule.timezone
    now = deps.clock()
    # a past day is recorded at noon local time: its date is the same in every timezone nearby
    when = (
        None
        if day is None or day == local_date(deps.clock, tz)
        else datetime.combine(day, time(12), ZoneInfo(tz))
    )

    key = request_key(Callback.TOUCH, body)

    def work(s: Session) -> int:
        repeats.claim(s, key, now)
        _, milestones = cadence.log_person_touch(
            s,
            account_id=meta.account_id,
            kind=kind,
            note=note,
            actor=deps.actor(user_id),
            clock=lambda: now,
            occurred_at=when,
            rules=deps.settings.rules.cadence,
        )
        account = s.get(Account, meta.account_id)
        assert account is not None
        today = local_date(deps.clock, tz)
        text = logged_text(tr, account.name, kind, milestones, today)
        row = enqueue(s, None, "notice", now, user=user_id, text=text)  # said once the touch is in
        s.flush()
        return row.id

    try:
        notice_id = deps.db.run(work)
    except cadence.FutureTouch:
        ack(response_action="errors", errors={Block.TOUCH_DAY: tr.t("touch.error.future")})
        return
    except service.NotFound:
        ack(response_action="errors", errors={Block.TOUCH_KIND: tr.t("touch.error.gone")})
        return
    except service.NotAllowed as exc:
        refusal = tr.t("touch.refuse", account=exc.params.get("account", ""))
        ack(response_action="errors", errors={Block.TOUCH_KIND: refusal})
        return
    except repeats.Repeated:  # a retry or a double submit: the first one logged it and said so
        ack()
        return
    ack()
    Publisher(client, deps).deliver(ids=[notice_id])
    publish_home(client, deps, user_id, help_text)


def register(app: App) -> None:
    app.action(Action.LOG_TOUCH)(open_log)
    app.view(Callback.TOUCH)(submit_log)
