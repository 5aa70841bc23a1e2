"""The two ways the tests reach Baton, in-process (the default) and over waitress (``served``), give the
same answers to the same signed requests, and each leaves no thread behind once it is done."""

from __future__ import annotations

import threading

import pytest

from settings import Settings
from storage import Database
from tests.bot.conftest import running, sign
from tests.fakeslack import FakeSlack


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "waitress"])
def test_both_transports_verify_signatures_answer_and_leave_no_threads(
    db: Database, slack: FakeSlack, settings: Settings, served: bool
) -> None:
    before = {t.ident for t in threading.enumerate()}
    with running(db, slack, settings, served=served) as baton:
        assert baton.command("help").status_code == 200
        body = baton.command_body("help")
        assert baton.post(body, sign(body, secret="not-the-secret")).status_code == 401
        assert baton.http.get(baton.url + "/healthz").json() == {"status": "ok"}
        assert baton.http.get(baton.url + "/slack/events").status_code == 405
        big = "x" * (1024 * 1024 + 1)
        assert baton.post(big, sign(big)).status_code == 413
        baton.wait_idle()
        assert any("/handoff" in str(r) for r in baton.slack.wait_responses(1))  # the help answer
    new = [t for t in threading.enumerate() if t.ident not in before]
    for t in new:  # a thread ending its last task may still be alive a moment: a leaked one never ends
        t.join(timeout=5)
    left = [t.name for t in new if t.is_alive()]
    assert left == []
