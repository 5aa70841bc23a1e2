"""`/handoff edit`: the submitter completes or corrects a handoff and the card follows."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import Handoff, HandoffEvent
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, OTHER, REP, Baton
from tests.bot.test_handoff_flow import create_handoff


def _open_edit(baton: Baton, user: str = REP, text: str = "edit acme corp") -> dict:
    n = len(baton.slack.of("views.open"))
    assert baton.command(text, user=user).status_code == 200
    return baton.slack.wait_for("views.open", n + 1)[-1].args["view"]


def test_edit_prefills_saves_updates_the_card_and_notes_the_thread(baton: Baton) -> None:
    create_handoff(baton, stakeholders_external="Hanako Sato | CFO | hanako@acme.example")
    view = _open_edit(baton)
    assert view["callback_id"] == "handoff_edit"
    seats = next(b for b in view["blocks"] if b.get("block_id") == "seats")
    assert seats["element"]["initial_value"] == "120"
    ext = next(b for b in view["blocks"] if b.get("block_id") == "stakeholders_external")
    assert ext["element"]["initial_value"] == "Hanako Sato | CFO | hanako@acme.example"

    resp = baton.submit(view, {"seats": 150, "addons": "SSO, audit log", "decision_maker": "CFO Hanako Sato"})
    assert resp.status_code == 200 and not resp.content.strip(b"{}")
    update = baton.slack.wait_for("chat.update")[0].args
    assert update["channel"] == HANDOFF_CHANNEL
    assert "150" in str(update["blocks"]) and "Checklist 8/12 items" in str(update["blocks"])
    baton.wait_idle()
    note = [c.args for c in baton.slack.of("chat.postMessage") if c.args.get("thread_ts")][-1]
    assert note["text"].endswith("edited this handoff: Seats, Options / add-ons, Decision maker.")
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert (h.seats, h.addons, h.version) == (150, "SSO, audit log", 3)  # created, posted, edited
        event = s.scalars(select(HandoffEvent).where(HandoffEvent.kind == "edited")).one()
        assert event.details["changed"] == ["seats", "addons", "decision_maker"]


def test_only_the_submitter_may_edit(baton: Baton) -> None:
    create_handoff(baton)
    baton.command("edit Acme Corp", user=OTHER)
    answer = baton.slack.wait_responses(1)[0]
    assert "Only the person who submitted this handoff" in answer["text"]
    assert answer["response_type"] == "ephemeral"


def test_a_stale_edit_is_refused_inline_and_loses_nothing_stored(baton: Baton) -> None:
    create_handoff(baton)
    first = _open_edit(baton)
    second = _open_edit(baton)
    assert baton.submit(first, {"seats": 130}).status_code == 200
    baton.slack.wait_for("chat.update")
    body = baton.submit(second, {"seats": 99}).json()
    assert body["response_action"] == "errors"
    assert "Someone saved this handoff after you opened it" in body["errors"]["account_name"]
    with baton.db.session() as s:
        assert s.scalars(select(Handoff.seats)).one() == 130


def test_edit_with_invalid_values_shows_errors_and_keeps_the_stored_handoff(baton: Baton) -> None:
    create_handoff(baton)
    view = _open_edit(baton)
    body = baton.submit(view, {"seats": -3, "contract_start": "2028-01-01"}).json()
    assert set(body["errors"]) == {"seats", "renewal_date"}
    with baton.db.session() as s:
        assert s.scalars(select(Handoff.seats)).one() == 120


def test_nudge_button_opens_the_edit_modal(baton: Baton) -> None:
    create_handoff(baton)
    nudge = next(c.args for c in baton.slack.of("chat.postMessage") if c.args["channel"] == REP)
    button = next(b for b in nudge["blocks"] if b["type"] == "actions")["elements"][0]
    n = len(baton.slack.of("views.open"))
    baton.click({"action_id": button["action_id"], "block_id": "b", "value": button["value"]}, user=REP)
    view = baton.slack.wait_for("views.open", n + 1)[-1].args["view"]
    assert view["callback_id"] == "handoff_edit"


def test_cs_can_see_but_not_edit(baton: Baton) -> None:
    create_handoff(baton)
    baton.command("edit Acme Corp", user=CS_USER)
    assert "Only the person who submitted" in baton.slack.wait_responses(1)[0]["text"]


def test_an_accept_while_the_submitter_edits_is_no_conflict(baton: Baton) -> None:
    post = create_handoff(baton)
    view = _open_edit(baton)
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    baton.click({"action_id": "handoff_accept", "block_id": actions["block_id"], "value": "1"}, user=CS_USER)
    baton.slack.wait_for("chat.update")
    resp = baton.submit(view, {"addons": "SSO"})
    assert resp.status_code == 200 and not resp.content.strip(b"{}")
    baton.slack.wait_for("chat.update", 2)
    with baton.db.session() as s:
        h = s.scalars(select(Handoff)).one()
        assert (h.addons, h.status) == ("SSO", "accepted")


def test_the_submitter_cannot_change_the_csm_cs_chose(baton: Baton) -> None:
    create_handoff(baton)
    view = _open_edit(baton)
    body = baton.submit(view, {"csm_user_id": OTHER}).json()
    assert body["errors"] == {
        "csm_user_id": "Only customer-success members can change the CSM; "
        "ask CS to reassign it from the card."
    }


def test_reassigning_the_csm_says_so_in_the_thread(baton: Baton) -> None:
    post = create_handoff(baton)
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    for n, csm in enumerate(("UCSMA0001", "UCSMB0002"), start=1):
        baton.click(
            {"action_id": "handoff_assign", "block_id": actions["block_id"], "selected_user": csm},
            user=CS_USER,
        )
        baton.slack.wait_for("chat.update", n)
        baton.wait_idle()
    notes = [c.args["text"] for c in baton.slack.of("chat.postMessage") if c.args.get("thread_ts")]
    assert "accepted this handoff; <@UCSMA0001> is the CSM" in notes[0]
    assert notes[1].endswith(f"<@{CS_USER}> assigned <@UCSMB0002> as the CSM.")
    with baton.db.session() as s:
        kinds = s.scalars(select(HandoffEvent.kind).order_by(HandoffEvent.id)).all()
    assert kinds == ["created", "accepted", "assigned", "assigned"]
