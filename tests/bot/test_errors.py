"""The one error path: a click or a submission naming something that does not exist, a forged payload,
a form Slack would not open, or a bug, is acknowledged at once and answered with a message the person
can read; nothing is written and nothing of the request reaches the log."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import func, select

from handoff import service
from storage.models import Handoff, HandoffEvent
from tests.bot.conftest import CS_USER, OTHER, REP, Baton, card_action
from tests.bot.test_handoff_flow import create_handoff, open_modal

GONE_HANDOFF = "Baton cannot find this handoff, so nothing was changed. /handoff list shows the open ones."
GONE_ALERT = "Baton cannot find this alert, so nothing was changed."


def _answer(baton: Baton, before: int) -> str:
    """The one private answer the click got (through its response_url)."""
    baton.wait_idle()
    answers = baton.slack.responses[before:]
    assert len(answers) == 1, answers
    assert answers[0]["response_type"] == "ephemeral"
    return answers[0]["text"]


@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        ("handoff_accept", {}, GONE_HANDOFF),
        ("handoff_assign", {"selected_user": CS_USER}, GONE_HANDOFF),
        ("handoff_ask", {}, GONE_HANDOFF),
        ("handoff_view", {}, GONE_HANDOFF),
        ("handoff_edit", {}, GONE_HANDOFF),
        ("alert_ack", {}, GONE_ALERT),
        ("alert_assign", {"selected_user": CS_USER}, GONE_ALERT),
        ("alert_snooze", {}, GONE_ALERT),
        ("alert_resolve", {}, GONE_ALERT),
        ("alert_hand_to_is", {}, GONE_ALERT),
    ],
)
def test_a_click_on_something_that_does_not_exist_is_acked_and_answered(
    baton: Baton, action: str, extra: dict, expected: str
) -> None:
    n = len(baton.slack.responses)
    block = "alert_actions:987" if action.startswith("alert") else "handoff_actions:987"
    value = {} if "selected_user" in extra else {"value": "987"}
    resp = baton.click({"action_id": action, "block_id": block, **value, **extra}, user=CS_USER)
    assert resp.status_code == 200
    assert _answer(baton, n).startswith(expected)
    assert not baton.slack.of("views.open")  # no modal about nothing


def test_log_touch_for_an_account_that_does_not_exist_says_so(baton: Baton) -> None:
    resp = baton.click(
        {"action_id": "touch_log_open", "block_id": "b", "value": json.dumps({"a": 987, "k": "check_in"})},
        user=CS_USER,
    )
    assert resp.status_code == 200
    baton.wait_idle()
    dms = [c.args["text"] for c in baton.slack.of("chat.postMessage") if c.args["channel"] == CS_USER]
    assert dms == ["This account no longer exists."]


def test_a_refusal_raised_by_the_service_reaches_the_person_in_their_language(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.slack.locales[OTHER] = "ja-JP"
    n = len(baton.slack.responses)
    assert baton.click(card_action(post, "handoff_accept"), user=OTHER).status_code == 200
    assert _answer(baton, n).startswith("引き継ぎを受理できるのはカスタマーサクセスのメンバーだけです。")


def _forged(baton: Baton, view: dict) -> dict:
    body = baton.interaction_body({"type": "view_submission", "user": {"id": REP}, "view": view})
    resp = baton.post(body)
    assert resp.status_code == 200, resp.text
    baton.wait_idle()
    return resp.json()


@pytest.mark.parametrize("callback", ["handoff_new", "handoff_edit", "handoff_question", "touch_log"])
@pytest.mark.parametrize("kind", [{"type": "modal"}, {}], ids=["modal", "no-type"])
def test_a_forged_submission_without_state_is_answered_in_the_modal(
    baton: Baton, callback: str, kind: dict
) -> None:
    view = {"id": "V1", "callback_id": callback, "private_metadata": "", "blocks": [], **kind}
    answer = _forged(baton, view)
    assert answer["response_action"] == "update"
    shown = answer["view"]["blocks"][0]["text"]["text"]
    assert shown.startswith("Something went wrong, and nothing was changed.")
    with baton.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Handoff)) == 0


def test_a_submission_naming_an_unknown_handoff_is_answered_under_its_first_field(baton: Baton) -> None:
    create_handoff(baton)
    with baton.db.session() as s:
        real = s.scalars(select(Handoff)).one().id
    n = len(baton.slack.of("views.open"))
    baton.click(
        {"action_id": "handoff_ask", "block_id": f"handoff_actions:{real}", "value": str(real)}, CS_USER
    )
    view = baton.slack.wait_for("views.open", n + 1)[-1].args["view"]
    view = {**view, "private_metadata": "987"}
    resp = baton.submit(view, {"question": "Who signs?"}, user=CS_USER)
    assert resp.json() == {"response_action": "errors", "errors": {"question": GONE_HANDOFF}}
    baton.wait_idle()
    with baton.db.session() as s:
        kinds = s.scalars(select(HandoffEvent.kind)).all()
    assert "question_asked" not in kinds


def test_an_edit_of_an_unknown_handoff_is_answered_in_the_modal(baton: Baton) -> None:
    view = open_modal(baton)
    meta = json.dumps({"m": "edit", "l": "en", "h": 987, "v": 1})
    body = baton.submission_body({**view, "callback_id": "handoff_edit", "private_metadata": meta}, {})
    resp = baton.post(body)
    assert resp.json() == {"response_action": "errors", "errors": {"account_name": GONE_HANDOFF}}


@pytest.mark.parametrize(
    ("status", "error"), [(200, "expired_trigger_id"), (500, "fatal_error")], ids=["expired", "500"]
)
def test_a_form_slack_would_not_open_is_reported(baton: Baton, status: int, error: str) -> None:
    baton.slack.fail["views.open"] = [(status, {}, {"ok": False, "error": error})]
    n = len(baton.slack.responses)
    assert baton.command("Acme Corp").status_code == 200
    assert (
        _answer(baton, n)
        == f"Slack did not open the form ({error}). Nothing was changed: please click again."
    )


def test_a_question_posted_nowhere_is_not_reported_as_posted(baton: Baton) -> None:
    post = create_handoff(baton)
    baton.click(card_action(post, "handoff_ask"), user=CS_USER)
    view = baton.slack.wait_for("views.open", 2)[-1].args["view"]
    baton.slack.fail["chat.postMessage"] = [(200, {}, {"ok": False, "error": "channel_not_found"})] * 2
    assert baton.submit(view, {"question": "Who signs?"}, user=CS_USER).status_code == 200
    baton.wait_idle()
    notes = [c.args["text"] for c in baton.slack.of("chat.postEphemeral")]
    # it waits in the outbox, which keeps trying: the asker hears that, never "posted"
    assert notes[-1].startswith("Your question is saved; Baton posts it in the handoff's thread as soon as")
    assert all("was posted" not in t for t in notes)


def test_a_bug_gets_a_short_answer_and_a_log_line_without_the_request(
    baton: Baton, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    post = create_handoff(baton)

    secret = "xoxb-" + "s3cret"  # built at run time: the log may show source lines, never values

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError(secret)

    monkeypatch.setattr(service, "accept", broken)
    n = len(baton.slack.responses)
    with caplog.at_level(logging.INFO):
        assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
        answer = _answer(baton, n)
    assert answer.startswith("Something went wrong, and nothing was changed.")
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.errors"]
    assert len(lines) == 1 and "block_actions handoff_accept" in lines[0] and "RuntimeError" in lines[0]
    logged = "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records)
    assert secret not in logged and "response_url" not in logged


def test_a_bug_after_the_change_was_saved_does_not_say_nothing_changed(
    baton: Baton, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.publish import Publisher

    post = create_handoff(baton)

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("card renderer broke")

    monkeypatch.setattr(Publisher, "deliver", broken)
    n = len(baton.slack.responses)
    assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
    assert _answer(baton, n).startswith("Your change was saved, but something went wrong after that")
    with baton.db.session() as s:
        assert s.scalars(select(Handoff)).one().accepted_by == CS_USER
