"""The App Home tab: built and published when someone opens it and after they log a touch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Row, or_, select
from sqlalchemy.orm import Session

from accounts.health import health_all
from bot.deps import Deps
from bot.i18n import Translator
from bot.text import Mrkdwn
from bot.views.home import AccountLine, home_view
from clock import local_date
from handoff import cadence, reminders, service
from settings import Rules
from storage.directory import learn, owned_by
from storage.models import Account, Alert

log = logging.getLogger(__name__)


def publish_home(
    client: WebClient, deps: Deps, user_id: str, help_text: Callable[[Translator], Mrkdwn]
) -> bool:
    """Build and publish ``user_id``'s Home tab; ``help_text`` is `/handoff`'s help (its table is in
    ``bot.listeners.commands``, which publishes the tab too)."""
    tr = deps.tr_for(user_id)
    rules = deps.settings.rules
    today = local_date(deps.clock, rules.schedule.timezone)
    email = deps.directory.email(user_id)  # the users.info call tr_for made: no extra lookup
    with deps.db.session() as s:
        learn(s, email, user_id, deps.clock())  # accounts whose csm_email is the viewer's are theirs
        mine = s.scalars(
            select(Account)
            .where(owned_by(user_id), Account.status == "active")
            .order_by(Account.name)
            .limit(25)
        )
        accounts = {a.id: a for a in mine}
        lines = _account_lines(s, accounts, today, rules)
        alerts = _open_alerts(s, user_id, accounts)
        handoffs, total = service.open_for(s, user_id, limit=25)
        view = home_view(
            tr,
            handoffs,
            total,
            today=today,
            accounts=lines,
            alerts=[(a, n) for a, n in alerts],
            metric_names=rules.health.metric_names,
            help_text=help_text(tr),
        )
    try:
        client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("publishing the Home tab for %s failed: %s", user_id, exc.response.get("error"))
        return False
    return True


def _account_lines(s: Session, accounts: dict[int, Account], today: date, rules: Rules) -> list[AccountLine]:
    """One line per account the viewer owns: its health (read for those accounts alone), its next touch
    and its latest handoff's card."""
    health = {h.account_id: h for h in health_all(s, today, rules.health, only=list(accounts))}
    lines = []
    for aid, account in accounts.items():
        h = health.get(aid)
        latest = cadence.latest_handoff(s, aid)
        nxt = reminders.next_touch(s, account, today, rules, latest)
        lines.append(
            AccountLine(
                account.name,
                h.band if h else "unknown",
                h.score if h else None,
                nxt[0] if nxt else None,
                nxt[1] if nxt else None,
                account_id=aid,
                permalink=latest.permalink if latest else None,
            )
        )
    return lines


def _open_alerts(s: Session, user_id: str, accounts: dict[int, Account]) -> Sequence[Row[tuple[Alert, str]]]:
    """The newest unresolved alerts the viewer owns or that are on their accounts, with the account's name."""
    return s.execute(
        select(Alert, Account.name)
        .join(Account, Account.id == Alert.account_id)
        .where(
            Alert.state != "resolved",
            or_(Alert.owner_user_id == user_id, Alert.account_id.in_(list(accounts))),
        )
        .order_by(Alert.raised_at.desc())
        .limit(15)
    ).all()
