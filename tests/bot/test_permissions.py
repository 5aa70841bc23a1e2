"""Who may log touches (customer success and the account's CSM), and edits that lost their version."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from storage.directory import record_lookup
from storage.models import Account, Handoff, Touch
from tests.bot.conftest import CS_USER, OTHER, REP, Baton
from tests.bot.test_edit import _open_edit
from tests.bot.test_handoff_flow import create_handoff
from tests.bot.test_touches import _assign, _log_button, _remind


def _touches(baton: Baton) -> int:
    with baton.db.session() as s:
        return s.scalar(select(func.count()).select_from(Touch)) or 0


def _touch_view(baton: Baton, user: str = CS_USER) -> dict:
    n = len(baton.slack.of("views.open"))
    baton.command("touch Acme Corp", user=user)
    return baton.slack.wait_for("views.open", n + 1)[-1].args["view"]


def test_someone_outside_cs_who_is_not_the_csm_is_told_privately_and_nothing_is_logged(
    baton: Baton,
) -> None:
    create_handoff(baton)
    baton.slack.locales[OTHER] = "ja-JP"
    n = len(baton.slack.responses)
    opened = len(baton.slack.of("views.open"))
    baton.command("touch Acme Corp kickoff went well", user=OTHER)
    baton.command("touch Acme Corp", user=OTHER)  # the modal is not even opened
    answers = baton.slack.wait_responses(n + 2)[n:]
    baton.wait_idle()
    assert all(a["response_type"] == "ephemeral" for a in answers)
    refusal = "カスタマーサクセス（BATON_CS_USERS）のメンバーとこの顧客の担当CSMだけです"
    assert all(refusal in a["text"] for a in answers)
    assert len(baton.slack.of("views.open")) == opened

    # a modal opened by CS, submitted by someone else (a forged submission): refused inline
    view = _touch_view(baton)
    body = baton.submit(view, {"touch_kind": "kickoff"}, user=OTHER).json()
    assert body["response_action"] == "errors"
    assert "BATON_CS_USERS" in body["errors"]["touch_kind"]
    assert _touches(baton) == 0


def test_the_log_touch_button_is_refused_to_others(baton: Baton, settings) -> None:
    create_handoff(baton)
    (post,) = _remind(baton, settings, 6)  # no CSM yet: the reminder goes to the handoff channel
    opened = len(baton.slack.of("views.open"))
    baton.click(_log_button(post), REP, channel=post["channel"])
    baton.wait_idle()
    assert len(baton.slack.of("views.open")) == opened
    notice = [c.args for c in baton.slack.of("chat.postMessage") if c.args["channel"] == REP][-1]
    assert "Only customer success (BATON_CS_USERS) and the CSM of Acme Corp" in notice["text"]


def test_the_accounts_csm_may_log_whether_assigned_or_known_from_csm_email(baton: Baton) -> None:
    create_handoff(baton)
    _assign(baton, csm=REP)  # REP is not in BATON_CS_USERS but is this account's CSM
    n = len(baton.slack.responses)
    baton.command("touch Acme Corp kickoff", user=REP)
    assert "Logged kickoff for Acme Corp" in baton.slack.wait_responses(n + 1)[-1]["text"]
    assert _touches(baton) == 1

    now = baton.clock()
    with baton.db.session() as s:
        s.add(
            Account(
                name="Globex",
                name_key="globex",
                csm_email="Owner@Globex.example",
                created_at=now,
                updated_at=now,
            )
        )
        record_lookup(s, "owner@globex.example", OTHER, None, now)
    baton.command("touch Globex check-in", user=OTHER)
    baton.command("touch Globex check-in", user=REP)  # not Globex's CSM
    baton.slack.wait_responses(n + 3)
    with baton.db.session() as s:
        logged = s.scalars(select(Touch.logged_by).join(Account).where(Account.name == "Globex")).all()
    assert logged == [OTHER]


def _forge(view: dict, version: object) -> dict:
    meta = json.loads(view["private_metadata"])
    return {**view, "private_metadata": json.dumps({**meta, "v": version})}


def test_an_edit_without_a_usable_version_is_refused_and_changes_nothing(baton: Baton) -> None:
    create_handoff(baton)
    stale = _open_edit(baton)
    fresh = _open_edit(baton)
    assert baton.submit(fresh, {"seats": 130}).status_code == 200  # someone saved meanwhile
    baton.slack.wait_for("chat.update")
    for version in (None, "1", "2", True, 2.0, 0):
        body = baton.submit(_forge(stale, version), {"seats": 99}).json()
        assert body["response_action"] == "errors", version
        assert "lost its version" in body["errors"]["account_name"], version
    missing = {
        **stale,
        "private_metadata": json.dumps(
            {k: v for k, v in json.loads(stale["private_metadata"]).items() if k != "v"}
        ),
    }
    assert "lost its version" in baton.submit(missing, {"seats": 99}).json()["errors"]["account_name"]
    with baton.db.session() as s:
        assert s.scalars(select(Handoff.seats)).one() == 130
