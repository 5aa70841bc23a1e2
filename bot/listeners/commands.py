"""`/handoff` and its subcommands."""

from __future__ import annotations

import difflib
import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.deps import Deps
from bot.listeners.common import ephemeral, open_edit, open_new
from bot.views.fields import section
from bot.views.handoff_card import card, list_blocks
from handoff import service
from handoff.checklist import normalize_name

SUBCOMMANDS = ("help", "list", "show", "edit", "new")
_WORDLIKE = re.compile(r"^-{0,2}[a-z]+$")


def _unknown_subcommand(word: str, rest: str) -> str | None:
    """The subcommand meant when a lone lowercase word looks like a typo of one ("lsit", "--help")."""
    if rest or not _WORDLIKE.match(word):
        return None
    close = difflib.get_close_matches(word.lstrip("-"), SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        return close[0]
    return "help" if word.startswith("-") else None


def register(app: App, deps: Deps) -> None:
    @app.command("/handoff")
    def handoff_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        user_id = command["user_id"]
        text = " ".join((command.get("text") or "").split())
        word, _, rest = text.partition(" ")
        sub = word.lower()
        tr = deps.tr_for(user_id)

        if sub == "help":
            respond(**ephemeral(tr.t("list.title"), [section(tr.render("help.j2"))]))
            return
        if sub == "list":
            with deps.db.session() as s:
                blocks = list_blocks(tr, list(service.open_for(s, user_id)))
            respond(**ephemeral(tr.t("list.title"), blocks))
            return
        if sub in ("show", "edit"):
            if not rest:
                respond(
                    **ephemeral(
                        "?", [section(tr.render("not_found.j2", account="", sub=sub, suggestions=[]))]
                    )
                )
                return
            try:
                with deps.db.session() as s:
                    h = service.latest_for_account(s, rest)
                    blocks = card(tr, h)
            except service.NotFound as exc:
                msg = tr.render(
                    "not_found.j2", account=rest, sub=sub, suggestions=exc.params.get("suggestions", [])
                )
                respond(**ephemeral(msg, [section(msg)]))
                return
            if sub == "show":
                respond(**ephemeral(h.account.name, blocks))
                return
            refusal = open_edit(
                client, deps, trigger_id=command["trigger_id"], handoff_id=h.id, user_id=user_id, tr=tr
            )
            if refusal:
                respond(**ephemeral(refusal))
            return

        suggestion = _unknown_subcommand(sub, rest)
        if suggestion is not None and not _is_known_account(deps, word):
            msg = tr.render("unknown_subcommand.j2", word=word, suggestion=suggestion)
            respond(**ephemeral(msg, [section(msg)]))
            return

        account_name = rest if sub == "new" else text
        if account_name:
            with deps.db.session() as s:
                already = service.open_handoff_account(s, account_name)
            if already:
                respond(**ephemeral(tr.t("error.already_open", account=already)))
                return
        open_new(
            client,
            deps,
            trigger_id=command["trigger_id"],
            user_id=user_id,
            channel_id=command.get("channel_id"),
            account_name=account_name,
            tr=tr,
        )


def _is_known_account(deps: Deps, name: str) -> bool:
    with deps.db.session() as s:
        return service.find_account(s, name) is not None or not normalize_name(name)
