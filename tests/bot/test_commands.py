"""`/handoff list | show | help`, unknown subcommands and unknown accounts."""

from __future__ import annotations

import pytest

from tests.bot.conftest import CS_USER, REP, Baton
from tests.bot.test_handoff_flow import create_handoff


def _answer(baton: Baton, text: str, user: str = REP) -> dict:
    n = len(baton.slack.responses)
    assert baton.command(text, user=user).status_code == 200
    answer = baton.slack.wait_responses(n + 1)[-1]
    assert answer["response_type"] == "ephemeral"
    return answer


def test_help_explains_usage(baton: Baton) -> None:
    blocks = str(_answer(baton, "help")["blocks"])
    for usage in ("/handoff Account name", "/handoff edit", "/handoff list", "/handoff show"):
        assert usage in blocks


def test_list_shows_unaccepted_handoffs_with_links(baton: Baton) -> None:
    create_handoff(baton)
    answer = _answer(baton, "list", user=CS_USER)
    text = str(answer["blocks"])
    assert (
        "Your handoffs and those waiting for CS" in text
        and "Acme Corp" in text
        and "https://example.slack.com/archives/" in text
    )
    assert "Waiting for CS" in text


def test_list_when_there_is_nothing(baton: Baton) -> None:
    assert "No open handoffs" in str(_answer(baton, "list")["blocks"])


def test_show_finds_an_account_regardless_of_case_and_width(baton: Baton) -> None:
    create_handoff(baton, text="ＡＣＭＥ Corp")
    blocks = str(_answer(baton, "show acme corp")["blocks"])
    assert "Handoff: ＡＣＭＥ Corp" in blocks  # found by "acme corp", shown as it was typed


def test_unknown_account_suggests_close_names(baton: Baton) -> None:
    create_handoff(baton)
    text = _answer(baton, "show Acme Crop")["text"]
    assert "No handoff found for *Acme Crop*" in text and "Did you mean: *Acme Corp*?" in text


def test_show_without_an_account_says_how(baton: Baton) -> None:
    assert "/handoff show Account name" in str(_answer(baton, "show")["blocks"])


def test_mistyped_subcommand_gets_a_suggestion_not_a_modal(baton: Baton) -> None:
    text = _answer(baton, "lsit")["text"]
    assert "I don't know `/handoff lsit`" in text and "Did you mean `/handoff list`?" in text
    assert "help" in _answer(baton, "--hlp")["text"]
    assert not baton.slack.of("views.open")


def test_an_account_with_an_open_handoff_points_to_edit(baton: Baton) -> None:
    create_handoff(baton)
    text = _answer(baton, "Acme Corp")["text"]
    assert "already has an open handoff" in text and "/handoff edit Acme Corp" in text


def test_plain_command_opens_an_empty_modal(baton: Baton) -> None:
    baton.command("")
    view = baton.slack.wait_for("views.open")[0].args["view"]
    account = next(b for b in view["blocks"] if b.get("block_id") == "account_name")
    assert "initial_value" not in account["element"]


def test_parse_keeps_account_names_that_look_like_subcommands() -> None:
    from bot.listeners.commands import parse

    known = {"help scout", "list industries", "show corp"}
    is_account = lambda name: " ".join(name.lower().split()) in known  # noqa: E731
    assert parse("", is_account) == ("new", "")
    assert parse("help", is_account) == ("help", "")
    assert parse("Help Scout", is_account) == ("new", "Help Scout")
    assert parse("List Industries", is_account) == ("new", "List Industries")
    assert parse("New Relic", is_account) == ("new", "New Relic")  # unknown names start a handoff
    assert parse("new Edit Inc", is_account) == ("new", "Edit Inc")
    assert parse("Show Corp", is_account) == ("new", "Show Corp")
    assert parse("show Show Corp", is_account) == ("show", "Show Corp")
    assert parse("edit  acme   corp", is_account) == ("edit", "acme corp")
    assert parse("lsit", is_account) == ("unknown", "list")
    assert parse("--hlp", is_account) == ("unknown", "help")
    assert parse("Shop", is_account) == ("new", "Shop")  # capitalised: an account, not a typo of "show"
    assert parse("Lisa", is_account) == ("new", "Lisa")


def test_touch_logs_a_touch_and_says_what_is_next(baton: Baton) -> None:
    create_handoff(baton)  # JPY 800,000/month: high touch
    answer = _answer(baton, "touch Acme Corp kickoff Goals agreed", user=CS_USER)
    assert answer["text"].startswith("Logged kickoff for Acme Corp. Onboarding: 1/7 milestones.")
    assert "Next: check-in due" in answer["text"]
    assert "No account named *Nope*" in _answer(baton, "touch Nope kickoff", user=CS_USER)["text"]
    assert "Log a touch with /handoff touch" in _answer(baton, "touch Nope", user=CS_USER)["text"]
    assert "Did you mean: *Acme Corp*?" in _answer(baton, "touch Acme Crop", user=CS_USER)["text"]
    # `/handoff touch Acme Corp` alone opens the Log touch modal on the touch due next
    n = len(baton.slack.of("views.open"))
    assert baton.command("touch acme corp", user=CS_USER).status_code == 200
    view = baton.slack.wait_for("views.open", n + 1)[-1].args["view"]
    assert view["callback_id"] == "touch_log" and "*Acme Corp*" in str(view["blocks"])
    kind = next(b for b in view["blocks"] if b.get("block_id") == "touch_kind")
    assert kind["element"]["initial_option"]["value"] == "check_in"


def test_the_help_is_made_from_the_subcommand_table_one_line_each_in_its_order() -> None:
    from bot.i18n import translator
    from bot.listeners.commands import SUBCOMMANDS, TABLE, help_text

    assert tuple(sub.name for sub in TABLE) == SUBCOMMANDS
    for locale in ("en", "ja"):
        tr = translator(locale)
        text = str(help_text(tr))
        positions = [text.index(tr.t(sub.help_key)) for sub in TABLE]
        assert positions == sorted(positions)
        assert text.count("\n• ") == len(TABLE)
        for sub in TABLE[1:]:  # "new" is also the bare `/handoff Name`
            assert f"`/handoff {sub.name}" in tr.t(sub.help_key)


def test_one_command_is_one_unit_of_work(baton: Baton, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing (is this an account?) and the subcommand share the request's session."""
    create_handoff(baton)
    db = baton.db
    opened: list[int] = []
    real = db.session

    def counted():  # type: ignore[no-untyped-def]
        opened.append(1)
        return real()

    monkeypatch.setattr(db, "session", counted)
    answer = _answer(baton, "show acme corp")
    baton.wait_idle()
    assert "Acme Corp" in str(answer["blocks"])
    assert len(opened) == 1
