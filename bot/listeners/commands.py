"""`/handoff` and its subcommands."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from accounts.lookup import find_account, similar_account_names
from accounts.names import NAME_MAX
from bot.deps import Deps
from bot.i18n import Translator
from bot.listeners.common import edit_view, ephemeral, new_view
from bot.listeners.home import publish_home
from bot.respond import answer_request
from bot.views.fields import section
from bot.views.handoff_card import card, list_blocks
from bot.views.touches import logged_text, touch_modal
from clock import local_date
from handoff import cadence, reminders, service
from handoff.cadence import Kind
from storage import repeats
from storage.models import Account

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


@dataclass
class Call:
    """One `/handoff` request as its subcommand sees it. ``s`` is the request's unit of work, owned by
    ``handoff_command``; Slack is answered (``Reply``) only after it is committed."""

    deps: Deps
    s: Session
    user_id: str
    arg: str
    raw: str
    command: dict[str, Any]
    tr: Translator


@dataclass
class Reply:
    """What the command answers once its unit of work is committed: a private message, a modal to open,
    and whether the person's Home tab changed."""

    message: dict[str, Any] | None = None
    view: dict[str, Any] | None = None
    home: bool = False


def _say(text: str, blocks: list[dict[str, Any]] | None = None) -> Reply:
    return Reply(message=ephemeral(text, blocks))


def _said(msg: str) -> Reply:
    """A rendered message shown as its own section too (mrkdwn: links and bold)."""
    return _say(msg, [section(msg)])


def _not_found(tr: Translator, name: str, sub: str, exc: service.NotFound) -> Reply:
    suggestions = exc.params.get("suggestions", [])
    return _said(tr.render("not_found.j2", account=name, sub=sub, suggestions=suggestions))


def help_text(tr: Translator) -> str:
    """The help, one line per subcommand, from the table below."""
    return tr.render("help.j2", lines=[tr.t(sub.help_key) for sub in TABLE])


def _help(c: Call) -> Reply:
    return _say(c.tr.t("help.title"), [section(help_text(c.tr))])


def _list(c: Call) -> Reply:
    rows, total = service.open_for(c.s, c.user_id)
    return _say(c.tr.t("list.title"), list_blocks(c.tr, rows, total))


def _unknown(c: Call) -> Reply:
    return _said(c.tr.render("unknown_subcommand.j2", word=c.raw.strip(), suggestion=c.arg))


def _show(c: Call) -> Reply:
    return _show_or_edit(c, "show")


def _edit(c: Call) -> Reply:
    return _show_or_edit(c, "edit")


def _show_or_edit(c: Call, sub: str) -> Reply:
    if not c.arg:
        return _said(c.tr.render("not_found.j2", account="", sub=sub, suggestions=[]))
    try:
        h = service.latest_for_account(c.s, c.arg)
    except service.NotFound as exc:
        return _not_found(c.tr, c.arg, sub, exc)
    if sub == "show":
        return _say(h.account.name, card(c.tr, h, timezone=c.deps.settings.rules.schedule.timezone))
    view, refusal = edit_view(c.s, c.deps, handoff_id=h.id, user_id=c.user_id, tr=c.tr)
    return Reply(view=view) if view else _say(refusal or "")


def _touch(c: Call) -> Reply:
    parsed = cadence.parse_touch(c.arg)
    reply = _touch_form(c) if parsed is None else _touch_logged(c, *parsed)
    reply.home = True
    return reply


def _touch_form(c: Call) -> Reply:
    """`/handoff touch Acme Corp`: the same modal as the reminder's button, on the touch due next."""
    rules = c.deps.settings.rules
    account = find_account(c.s, c.arg)
    if account is None:  # no kind and no known account: which account was meant, and how
        close = similar_account_names(c.s, c.arg)
        if close:
            return _not_found(c.tr, c.arg, "touch", service.NotFound(account=c.arg, suggestions=close))
        return _say(c.tr.t("touch.usage"))
    if not cadence.may_log_touch(c.s, account, c.deps.actor(c.user_id)):
        return _say(c.tr.t("touch.refuse", account=account.name))
    today = local_date(c.deps.clock, rules.schedule.timezone)
    nxt = reminders.next_touch(c.s, account, today, rules)
    kind = nxt[0] if nxt else Kind.CHECK_IN
    return Reply(view=touch_modal(c.tr, account_id=account.id, account=account.name, kind=kind, today=today))


def _touch_logged(c: Call, name: str, kind: Kind, note: str | None) -> Reply:
    deps, s = c.deps, c.s
    # the same command sent again (a retry, a replay) logs nothing more
    key = f"touch:{c.command['trigger_id']}"
    try:
        repeats.claim(s, key, deps.clock())
        touch, milestones = cadence.log_person_touch(
            s,
            account_name=name,
            kind=kind,
            note=note,
            actor=deps.actor(c.user_id),
            clock=deps.clock,
            rules=deps.settings.rules.cadence,
        )
    except service.NotFound as exc:
        s.rollback()  # nothing of a refused touch is kept, not even its key
        return _not_found(c.tr, name, "touch", exc)
    except service.NotAllowed as exc:
        s.rollback()
        return _say(c.tr.t("touch.refuse", account=exc.params.get("account", name)))
    except repeats.Repeated as exc:
        s.rollback()
        answer = str(exc.result.get("answer") or "")
        if not exc.result:  # both copies arrived at once: the first has committed by now
            answer = str(repeats.result_of(s, key).get("answer") or "")
        return _say(answer) if answer else Reply()
    stored = s.get(Account, touch.account_id)
    today = local_date(deps.clock, deps.settings.rules.schedule.timezone)
    answer = logged_text(c.tr, stored.name if stored else name, kind, milestones, today)
    repeats.remember(s, key, answer=answer)
    return _say(answer)


def _tier(c: Call) -> Reply:
    name, _, word = c.arg.rpartition(" ")
    tier = TIER_WORDS.get(word.lower())
    if not name or tier is None:
        return _say(c.tr.t("tier.usage"))
    try:
        account = cadence.set_tier(
            c.s, account_name=name, tier=tier, actor=c.deps.actor(c.user_id), clock=c.deps.clock
        )
    except service.NotAllowed:
        c.s.rollback()
        return _say(c.tr.t("tier.refused"))
    except service.NotFound as exc:
        c.s.rollback()
        if exc.params.get("no_handoff"):
            return _say(c.tr.t("tier.no_handoff", account=name))
        return _not_found(c.tr, name, "tier", exc)
    return _say(c.tr.t("tier.changed", account=account.name, tier=c.tr.t(f"tier.{tier}")))


def _new(c: Call) -> Reply:
    name = c.arg
    if name and (already := service.open_handoff_account(c.s, name)):
        return _say(c.tr.t("error.already_open", account=already))
    channel = c.command.get("channel_id")
    return Reply(view=new_view(user_id=c.user_id, channel_id=channel, account_name=name[:NAME_MAX], tr=c.tr))


@dataclass(frozen=True)
class Subcommand:
    name: str
    run: Callable[[Call], Reply]
    help_key: str  # its line in the help (strings.yml)


# Every `/handoff` subcommand: what runs it and its line in the help, in the help's order.
TABLE = (
    Subcommand("new", _new, "help.new"),
    Subcommand("edit", _edit, "help.edit"),
    Subcommand("list", _list, "help.list"),
    Subcommand("show", _show, "help.show"),
    Subcommand("touch", _touch, "help.touch"),
    Subcommand("tier", _tier, "help.tier"),
    Subcommand("help", _help, "help.help"),
)
SUBCOMMANDS = tuple(sub.name for sub in TABLE)
_RUN = {sub.name: sub.run for sub in TABLE} | {"unknown": _unknown}


def handoff_command(
    ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond, deps: Deps
) -> None:
    """`/handoff ...`: acknowledged first; one unit of work reads (and for a touch or a tier, writes)
    what the subcommand needs; then Slack is answered."""
    ack()
    user_id, raw = command["user_id"], command.get("text") or ""
    tr = deps.tr_for(user_id)
    with deps.db.session() as s:
        sub, arg = parse(raw, lambda name: find_account(s, name) is not None)
        reply = _RUN[sub](Call(deps, s, user_id, arg, raw, command, tr))
    if reply.view is not None:
        client.views_open(trigger_id=command["trigger_id"], view=reply.view)
    if reply.message is not None:
        answer_request(deps, client, respond, command, reply.message)
    if reply.home:
        publish_home(client, deps, user_id, help_text)


def register(app: App) -> None:
    app.command("/handoff")(handoff_command)
