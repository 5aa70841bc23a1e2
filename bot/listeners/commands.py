"""`/handoff` and its subcommands."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from accounts.lookup import find_account, similar_account_names
from accounts.names import NAME_MAX
from bot.deps import Deps
from bot.i18n import Translator
from bot.listeners.common import ephemeral, open_edit, open_new
from bot.listeners.events import publish_home
from bot.views.fields import section
from bot.views.handoff_card import card, list_blocks
from bot.views.touches import logged_text, touch_modal
from clock import local_date
from handoff import cadence, reminders, service
from handoff.cadence import Kind
from storage import repeats
from storage.models import Account

SUBCOMMANDS = ("help", "list", "show", "edit", "new", "touch", "tier")
TIER_WORDS = {
    **{t: t for t in ("high", "mid", "tech")},
    **{f"{t}-touch": t for t in ("high", "mid", "tech")},
    "ハイタッチ": "high",
    "ロータッチ": "mid",
    "ミドルタッチ": "mid",
    "テックタッチ": "tech",
}
_TYPO = re.compile(r"^-{0,2}[a-z]+$")  # a lone lowercase word, as typed: "lsit", "--help"


def _typo_of_subcommand(word: str) -> str | None:
    """The subcommand meant by a mistyped one; only for lowercase words, since account names that
    happen to look like words ("Shop", "Lisa") are typed capitalised or are known accounts."""
    if not _TYPO.match(word):
        return None
    close = difflib.get_close_matches(word.lstrip("-"), SUBCOMMANDS, n=1, cutoff=0.75)
    if close:
        return close[0]
    return "help" if word.startswith("-") else None


def parse(text: str, is_account: Callable[[str], bool]) -> tuple[str, str]:
    """``(subcommand, argument)`` for what follows `/handoff`; "new" with the account name otherwise.

    A subcommand word wins only where it makes sense: `help`/`list` alone, `show`/`edit`/`new` with
    an argument. Anything naming a known account is that account, so `/handoff List Industries` and
    `/handoff Help Scout` start handoffs; `/handoff new Edit Inc` forces a new handoff for any name.
    """
    text = " ".join(text.split())
    word, _, rest = text.partition(" ")
    sub = word.lower()
    if not text:
        return "new", ""
    if sub in ("help", "list") and not rest:
        return sub, ""
    if word == "new" and rest:  # lowercase only: "New Relic" is an account name
        return "new", rest
    if word in ("touch", "tier") and rest and not is_account(text):
        return word, rest
    if sub in ("show", "edit"):
        if not rest:
            return sub, ""
        if is_account(text) and not is_account(rest):
            return "new", text
        return sub, rest
    if not rest and not is_account(text):
        typo = _typo_of_subcommand(word)
        if typo:
            return "unknown", typo
    return "new", text


def register(app: App, deps: Deps) -> None:
    def is_account(name: str) -> bool:
        with deps.db.session() as s:
            return find_account(s, name) is not None

    @app.command("/handoff")
    def handoff_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        user_id = command["user_id"]
        raw = command.get("text") or ""
        sub, arg = parse(raw, is_account)
        tr = deps.tr_for(user_id)

        if sub == "help":
            respond(**ephemeral(tr.t("help.title"), [section(tr.render("help.j2"))]))
        elif sub == "list":
            with deps.db.session() as s:
                rows, total = service.open_for(s, user_id)
                blocks = list_blocks(tr, rows, total)
            respond(**ephemeral(tr.t("list.title"), blocks))
        elif sub == "unknown":
            msg = tr.render("unknown_subcommand.j2", word=raw.strip(), suggestion=arg)
            respond(**ephemeral(msg, [section(msg)]))
        elif sub == "touch":
            _touch(arg, user_id, respond, tr, client, command["trigger_id"])
            publish_home(client, deps, user_id)
        elif sub == "tier":
            _tier(arg, user_id, respond, tr)
        elif sub in ("show", "edit"):
            _show_or_edit(sub, arg, user_id, command["trigger_id"], client, respond, tr)
        else:
            _start(arg, user_id, command, client, respond, tr)

    def _show_or_edit(
        sub: str,
        name: str,
        user_id: str,
        trigger_id: str,
        client: WebClient,
        respond: Respond,
        tr: Translator,
    ) -> None:
        if not name:
            msg = tr.render("not_found.j2", account="", sub=sub, suggestions=[])
            respond(**ephemeral(msg, [section(msg)]))
            return
        try:
            with deps.db.session() as s:
                h = service.latest_for_account(s, name)
                blocks = card(tr, h, timezone=deps.settings.rules.schedule.timezone)
        except service.NotFound as exc:
            _not_found(respond, tr, name, sub, exc)
            return
        if sub == "show":
            respond(**ephemeral(h.account.name, blocks))
            return
        refusal = open_edit(client, deps, trigger_id=trigger_id, handoff_id=h.id, user_id=user_id, tr=tr)
        if refusal:
            respond(**ephemeral(refusal))

    def _not_found(respond: Respond, tr: Translator, name: str, sub: str, exc: service.NotFound) -> None:
        msg = tr.render("not_found.j2", account=name, sub=sub, suggestions=exc.params.get("suggestions", []))
        respond(**ephemeral(msg, [section(msg)]))

    def _touch(
        text: str, user_id: str, respond: Respond, tr: Translator, client: WebClient, trigger_id: str
    ) -> None:
        parsed = cadence.parse_touch(text)
        if parsed is None:
            rules = deps.settings.rules
            today = local_date(deps.clock, rules.schedule.timezone)
            view = None
            with deps.db.session() as s:
                account = find_account(s, text)
                if account is not None and not cadence.may_log_touch(s, account, deps.actor(user_id)):
                    respond(**ephemeral(tr.t("touch.refuse", account=account.name)))
                    return
                if account is not None:  # the modal starts on the touch that is due next
                    nxt = reminders.next_touch(s, account, today, rules)
                    kind = nxt[0] if nxt else Kind.CHECK_IN
                    view = touch_modal(
                        tr, account_id=account.id, account=account.name, kind=kind, today=today
                    )
            if view is None:  # no kind and no known account: which account was meant, and how
                with deps.db.session() as s:
                    close = similar_account_names(s, text)
                if close:
                    _not_found(respond, tr, text, "touch", service.NotFound(account=text, suggestions=close))
                else:
                    respond(**ephemeral(tr.t("touch.usage")))
            else:  # `/handoff touch Acme Corp`: the same modal as the reminder's button
                client.views_open(trigger_id=trigger_id, view=view)
            return
        name, kind, note = parsed
        key = f"touch:{trigger_id}"  # the same command sent again (a retry, a replay) logs nothing more
        try:
            with deps.db.session() as s:
                repeats.claim(s, key, deps.clock())
                touch, milestones = cadence.log_person_touch(
                    s,
                    account_name=name,
                    kind=kind,
                    note=note,
                    actor=deps.actor(user_id),
                    clock=deps.clock,
                    rules=deps.settings.rules.cadence,
                )
                stored = s.get(Account, touch.account_id)
                name = stored.name if stored else name
                today = local_date(deps.clock, deps.settings.rules.schedule.timezone)
                answer = logged_text(tr, name, kind, milestones, today)
                repeats.remember(s, key, answer=answer)
        except service.NotFound as exc:
            _not_found(respond, tr, name, "touch", exc)
            return
        except service.NotAllowed as exc:
            respond(**ephemeral(tr.t("touch.refuse", account=exc.params.get("account", name))))
            return
        except repeats.Repeated as exc:
            if not exc.result:  # both copies arrived at once: the first has committed by now
                with deps.db.session() as s:
                    exc.result.update(repeats.result_of(s, key))
            answer = str(exc.result.get("answer") or "")
            if answer:
                respond(**ephemeral(answer))
            return
        respond(**ephemeral(answer))

    def _tier(text: str, user_id: str, respond: Respond, tr: Translator) -> None:
        name, _, word = text.rpartition(" ")
        tier = TIER_WORDS.get(word.lower())
        if not name or tier is None:
            respond(**ephemeral(tr.t("tier.usage")))
            return
        try:
            with deps.db.session() as s:
                account = cadence.set_tier(
                    s, account_name=name, tier=tier, actor=deps.actor(user_id), clock=deps.clock
                )
                name = account.name
        except service.NotAllowed:
            respond(**ephemeral(tr.t("tier.refused")))
            return
        except service.NotFound as exc:
            if exc.params.get("no_handoff"):
                respond(**ephemeral(tr.t("tier.no_handoff", account=name)))
            else:
                _not_found(respond, tr, name, "tier", exc)
            return
        respond(**ephemeral(tr.t("tier.changed", account=name, tier=tr.t(f"tier.{tier}"))))

    def _start(
        name: str, user_id: str, command: dict[str, Any], client: WebClient, respond: Respond, tr: Translator
    ) -> None:
        if name:
            with deps.db.session() as s:
                already = service.open_handoff_account(s, name)
            if already:
                respond(**ephemeral(tr.t("error.already_open", account=already)))
                return
        open_new(
            client,
            deps,
            trigger_id=command["trigger_id"],
            user_id=user_id,
            channel_id=command.get("channel_id"),
            account_name=name[:NAME_MAX],
            tr=tr,
        )
