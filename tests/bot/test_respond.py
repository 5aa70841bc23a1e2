"""Nothing lost: a private answer whose response_url fails is retried a few times (429 after its
Retry-After, capped; 5xx and connection errors after a short backoff), then reaches the same person
in the channel or a DM; the log says so in one line that names neither the URL nor the message."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from bot import respond
from bot.errors import KeptAck
from tests.bot.conftest import CS_USER, HANDOFF_CHANNEL, OTHER, REP, Baton, card_action
from tests.bot.test_errors import GONE_HANDOFF
from tests.bot.test_handoff_flow import create_handoff

HELP_TITLE = "How to use /handoff"  # the help's text


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between retries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(respond, "SLEEP", slept.append)
    return slept


def _help(baton: Baton) -> None:
    assert baton.command("help").status_code == 200
    baton.wait_idle()


def _dms(baton: Baton, user: str = REP) -> list[str]:
    return [c.args["text"] for c in baton.slack.of("chat.postMessage") if c.args["channel"] == user]


def _no_url_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        line = record.getMessage()
        assert "/response/" not in line, line


def test_a_500_then_success_is_delivered_once(baton: Baton, waits: list[float]) -> None:
    baton.slack.response_fail = [(500, {}, {"ok": False, "error": "internal_error"})]
    _help(baton)
    assert baton.slack.response_attempts == [500, 200]
    assert len(baton.slack.responses) == 1
    assert baton.slack.responses[0]["response_type"] == "ephemeral"
    assert len(waits) == 1 and 0 < waits[0] <= respond.MAX_WAIT
    assert not baton.slack.of("chat.postEphemeral") and not _dms(baton)


def test_a_429_waits_its_retry_after_then_is_delivered(baton: Baton, waits: list[float]) -> None:
    baton.slack.response_fail = [(429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})]
    _help(baton)
    assert waits == [1.0]
    assert baton.slack.response_attempts == [429, 200]
    assert len(baton.slack.responses) == 1


def test_a_long_retry_after_is_cut_to_a_few_seconds(baton: Baton, waits: list[float]) -> None:
    baton.slack.response_fail = [(429, {"Retry-After": "600"}, {"ok": False})]
    _help(baton)
    assert waits == [respond.MAX_WAIT]
    assert len(baton.slack.responses) == 1


@pytest.mark.parametrize("header", ["soon", "Wed, 02 Dec 2026 05:10:00 GMT", "nan", "-5", ""])
def test_a_retry_after_that_is_not_seconds_waits_the_backoff(
    baton: Baton, waits: list[float], caplog: pytest.LogCaptureFixture, header: str
) -> None:
    baton.slack.response_fail = [(429, {"Retry-After": header}, {"ok": False})]
    with caplog.at_level(logging.WARNING):
        _help(baton)
    assert len(waits) == 1 and 0 < waits[0] <= respond.MAX_WAIT
    assert baton.slack.response_attempts == [429, 200]
    assert len(baton.slack.responses) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_expired_response_url_falls_back_to_an_ephemeral_note_in_the_channel(
    baton: Baton, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    baton.slack.expired.add("r")
    with caplog.at_level(logging.DEBUG):
        _help(baton)
    assert baton.slack.response_attempts == [404]  # not retried: a spent URL stays spent
    assert waits == [] and baton.slack.responses == []
    (note,) = baton.slack.of("chat.postEphemeral")
    assert (note.args["channel"], note.args["user"]) == ("CSALES01", REP)
    assert note.args["text"].startswith(HELP_TITLE) and note.args["blocks"]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.respond"]
    assert len(lines) == 1 and "404 expired_url" in lines[0] and "ephemeral" in lines[0]
    assert HELP_TITLE not in lines[0]  # what was said stays out of the log
    _no_url_logged(caplog)


def test_a_response_url_that_keeps_failing_is_tried_three_times_then_told_in_the_channel(
    baton: Baton, waits: list[float]
) -> None:
    baton.slack.response_fail = [(503, {}, "upstream connect error")] * 5
    _help(baton)
    assert baton.slack.response_attempts == [503, 503, 503]
    assert len(waits) == 2
    assert baton.slack.responses == []
    assert len(baton.slack.of("chat.postEphemeral")) == 1


def test_when_the_channel_refuses_the_note_too_the_person_gets_a_dm(
    baton: Baton, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    baton.slack.expired.add("r")
    baton.slack.fail["chat.postEphemeral"] = [(200, {}, {"ok": False, "error": "channel_not_found"})]
    with caplog.at_level(logging.WARNING):
        _help(baton)
    (dm,) = [c.args for c in baton.slack.of("chat.postMessage") if c.args["channel"] == REP]
    assert dm["text"].startswith(HELP_TITLE)
    assert "&amp;" not in dm["text"]  # escaped once, where the answer was built
    assert dm["blocks"] and "/handoff" in str(dm["blocks"])  # the help itself, not only its title
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bot.respond"]
    assert "channel_not_found" in line and "sent as dm" in line
    _no_url_logged(caplog)


def test_a_refusal_from_the_error_path_reaches_the_person_when_its_response_url_is_spent(
    baton: Baton, waits: list[float]
) -> None:
    baton.slack.expired.add("r")
    click = {"action_id": "handoff_accept", "block_id": "handoff_actions:987", "value": "987"}
    assert baton.click(click, user=CS_USER).status_code == 200
    baton.wait_idle()
    (note,) = baton.slack.of("chat.postEphemeral")
    assert (note.args["channel"], note.args["user"]) == (HANDOFF_CHANNEL, CS_USER)
    assert note.args["text"].startswith(GONE_HANDOFF)


def test_a_second_accept_hears_who_accepted_first_once_despite_a_500(
    baton: Baton, waits: list[float]
) -> None:
    post = create_handoff(baton)
    assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
    baton.wait_idle()
    baton.slack.response_fail = [(500, {}, {"ok": False})]
    n = len(baton.slack.responses)
    assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
    baton.wait_idle()
    (said,) = baton.slack.responses[n:]
    assert said["text"].startswith("This handoff was already accepted by")
    assert baton.slack.response_attempts[-2:] == [500, 200]


def test_a_dm_fallback_keeps_the_mention_a_mention(baton: Baton, waits: list[float]) -> None:
    post = create_handoff(baton)
    assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
    baton.wait_idle()
    baton.slack.expired.add("r")
    baton.slack.fail["chat.postEphemeral"] = [(200, {}, {"ok": False, "error": "channel_not_found"})]
    assert baton.click(card_action(post, "handoff_accept"), user=CS_USER).status_code == 200
    baton.wait_idle()
    (dm,) = _dms(baton, CS_USER)
    assert dm.startswith("This handoff was already accepted by")
    assert f"<@{CS_USER}>" in dm and "&lt;" not in dm


def _handoff_id(baton: Baton) -> str:
    return card_action(create_handoff(baton), "handoff_accept")["value"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda baton: {"action_id": "crm_start_handoff", "block_id": "b", "value": "987"},
            "This deal is no longer in Baton",
        ),
        (
            lambda baton: {"action_id": "handoff_edit", "block_id": "b", "value": _handoff_id(baton)},
            "Only the person who submitted this handoff",
        ),
    ],
    ids=["crm_deal_gone", "edit_refused"],
)
def test_a_button_refusal_reaches_the_person_when_its_response_url_is_spent(
    baton: Baton, waits: list[float], make, expected: str
) -> None:
    action = make(baton)
    baton.slack.expired.add("r")
    assert baton.click(action, user=OTHER).status_code == 200
    baton.wait_idle()
    (note,) = baton.slack.of("chat.postEphemeral")
    assert (note.args["channel"], note.args["user"]) == (HANDOFF_CHANNEL, OTHER)
    assert note.args["text"].startswith(expected)


def test_an_answer_to_a_listener_that_failed_before_its_ack_waits_for_the_ack(
    baton: Baton, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error path answers in the ack's place; telling the person (and its retries) comes after."""

    def broken_ack(self: KeptAck, *_a: object, **_k: object) -> None:
        raise RuntimeError("ack broke")

    acked = threading.Event()
    after_ack: list[bool] = []

    def wait(_seconds: float) -> None:
        after_ack.append(acked.wait(5))

    monkeypatch.setattr(KeptAck, "__call__", broken_ack)
    monkeypatch.setattr(respond, "SLEEP", wait)
    baton.slack.response_fail = [(429, {"Retry-After": "1"}, {"ok": False})]
    click = {"action_id": "handoff_accept", "block_id": "handoff_actions:987", "value": "987"}
    assert baton.click(click, user=CS_USER).status_code == 200
    acked.set()
    baton.wait_idle()
    assert after_ack == [True]
    (said,) = baton.slack.responses
    assert said["text"].startswith("Something went wrong")


def test_connection_errors_are_retried_then_reported_without_the_url(waits: list[float]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    why = respond.post(f"http://127.0.0.1:{port}/response/secret", {"text": "hi"})
    assert why == "URLError"
    assert len(waits) == respond.RETRIES


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": ["1.5"]}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "-1"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_only_seconds(headers: dict, expected: float | None) -> None:
    assert respond.retry_after(headers) == expected
