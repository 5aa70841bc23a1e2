"""Slack retries, double clicks and replays inside the signing window: each request is acted on once and
every copy is answered as the first was. Copies are the very same signed body posted again."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.models import Handoff, HandoffEvent, Touch
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, REP, VALID, Baton, card_action, sign
from tests.bot.test_edit import _open_edit
from tests.bot.test_handoff_flow import create_handoff, open_modal


def _send(baton: Baton, body: str, times: int = 4) -> list[int]:
    return [baton.post(body, sign(body)).status_code for _ in range(times)]


def _thread_posts(baton: Baton) -> list[dict]:
    return [c.args for c in baton.slack.of("chat.postMessage") if c.args.get("thread_ts")]


def _count(baton: Baton, model: type, *where: object) -> int:
    with baton.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_the_same_question_sent_four_times_is_posted_once(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_ask"), user=CS_USER)
    view = baton.slack.wait_for("views.open", 2)[-1].args["view"]
    before = len(_thread_posts(baton))
    body = baton.submission_body(view, {"question": "Who signs the PO?"}, user=CS_USER)
    assert _send(baton, body) == [200] * 4
    baton.wait_idle()
    assert len(_thread_posts(baton)) == before + 1
    assert _count(baton, HandoffEvent, HandoffEvent.kind == "question_asked") == 1


def test_the_same_touch_command_four_times_logs_one_touch_and_answers_each_alike(baton: Baton) -> None:
    create_handoff(baton)  # high touch: 7 milestones, the kickoff first
    n = len(baton.slack.responses)
    body = baton.command_body("touch Acme Corp check-in first weekly call", user=CS_USER)
    assert _send(baton, body) == [200] * 4
    answers = baton.slack.wait_responses(n + 4)[n:]
    baton.wait_idle()
    assert _count(baton, Touch) == 1
    assert [a["text"] for a in answers] == [answers[0]["text"]] * 4
    assert "Onboarding: 1/7 milestones" in answers[0]["text"]
    assert "Next: kickoff" in answers[0]["text"]  # the kickoff is still what is due next


def test_the_same_touch_modal_submitted_four_times_logs_one_touch(baton: Baton) -> None:
    create_handoff(baton)
    n = len(baton.slack.of("views.open"))
    baton.command("touch Acme Corp", user=CS_USER)
    view = baton.slack.wait_for("views.open", n + 1)[-1].args["view"]
    body = baton.submission_body(view, {"touch_kind": "check_in"}, user=CS_USER)
    assert _send(baton, body) == [200] * 4
    baton.wait_idle()
    assert _count(baton, Touch) == 1
    notices = [c for c in baton.slack.of("chat.postMessage") if c.args["channel"] == CS_USER]
    assert len(notices) == 1 and "1/7 milestones" in notices[0].args["text"]


def test_a_repeated_new_handoff_and_edit_are_saved_once_and_answered_as_the_first(baton: Baton) -> None:
    view = open_modal(baton)
    body = baton.submission_body(view, VALID)
    responses = [baton.post(body, sign(body)) for _ in range(3)]
    assert all(r.status_code == 200 and r.content in (b"", b"{}") for r in responses)  # no "already open"
    baton.wait_idle()
    assert _count(baton, Handoff) == 1
    cards = [c for c in baton.slack.of("chat.postMessage") if c.args["channel"] == HANDOFF_CHANNEL]
    assert len(cards) == 1

    edit = _open_edit(baton)
    body = baton.submission_body(edit, {"seats": 150})
    responses = [baton.post(body, sign(body)) for _ in range(3)]
    # answered as the first was, not "edited meanwhile"
    assert all(r.status_code == 200 and r.content in (b"", b"{}") for r in responses)
    baton.wait_idle()
    assert _count(baton, HandoffEvent, HandoffEvent.kind == "edited") == 1
    assert len([p for p in _thread_posts(baton) if "edited this handoff" in p["text"]]) == 1


def test_a_corrected_submission_of_the_same_modal_still_goes_through(baton: Baton) -> None:
    """A refused submission records nothing: fixing the field and submitting the same modal works."""
    view = {**open_modal(baton), "id": "VSAME"}
    refused = baton.submit(view, {**VALID, "seats": 0})
    assert refused.json()["response_action"] == "errors"
    assert baton.submit(view, VALID).content in (b"", b"{}")
    baton.wait_idle()
    assert _count(baton, Handoff) == 1


def test_accepting_or_assigning_twice_notes_the_thread_once(baton: Baton) -> None:
    post = create_handoff(baton)
    before = len(_thread_posts(baton))
    for _ in range(2):
        baton.click({**card_action(post, "handoff_assign"), "selected_user": REP}, user=CS_USER)
    baton.wait_idle()
    assert len(_thread_posts(baton)) == before + 1
    assert _count(baton, HandoffEvent, HandoffEvent.kind == "assigned") == 1
