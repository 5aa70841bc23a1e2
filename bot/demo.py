"""`python app.py demo`: Baton without Slack. Seeds realistic handoffs through the same services the
Slack listeners use, then prints the cards and messages Baton would post."""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import select, update

from accounts.lookup import find_account
from alerts.service import scan
from bot.i18n import Translator, translator
from bot.render_text import render_blocks
from bot.text import mention
from bot.views.alert_card import alert_card
from bot.views.crm import activity_kinds, won_deal_dm
from bot.views.handoff_card import card, checklist_blocks
from bot.views.touches import reminder_blocks
from clock import Clock, local_date, utcnow
from crm import sync, writeback
from crm.demo import BASE_URL, DEAL_ID, TOKEN, DemoHubSpot
from crm.hubspot import HubSpot
from crm.model import WonDeal, handoff_form
from handoff import reminders, service
from handoff.checklist import HandoffForm, missing_items
from handoff.crm_link import WRITEBACK, link_deal, queue_writeback
from handoff.service import Actor
from ingest import ingest_accounts, ingest_signals, records
from settings import Settings
from storage import Database
from storage.models import Account, Alert, CrmDeal, Outbox

REP_IS, REP_FS, CS_LEAD, CSM = "U0DEMOIS1", "U0DEMOFS1", "U0DEMOCS1", "U0DEMOCSM"

SEED: list[HandoffForm] = [
    HandoffForm(
        account_name="株式会社ミライ物流",
        why_bought="配車と倉庫の問い合わせ対応が属人化し、繁忙期に回答が2日遅れていた。",
        problem="問い合わせの一次回答を24時間以内にし、担当者の残業を減らしたい。",
        success_criteria="3か月で一次回答24時間以内を90%、CS担当の残業を月20時間削減。",
        plan="Enterprise",
        seats=200,
        price_amount=Decimal(750_000),
        currency="JPY",
        billing_period="monthly",
        contract_start=date(2026, 12, 1),
        renewal_date=date(2027, 11, 30),
        addons="SSO（SAML）、監査ログ、専任トレーニング2回",
        decision_process="現場リーダーの評価 → 情報システム部のセキュリティ審査 → 役員会で決裁。",
        decision_maker="取締役 物流本部長 佐藤 一郎",
        competitors="Zendesk、国内ベンダーA社",
        why_won="日本語の問い合わせ分類精度と、既存WMSとの連携。",
        stakeholders_external="佐藤 一郎 | 決裁者・物流本部長 | ichiro.sato@mirai-logi.example\n"
        "田中 美咲 | 現場リーダー | misaki.tanaka@mirai-logi.example",
        stakeholder_users=[REP_IS],
        discussion="ISが資料請求から課題をヒアリング。FSがPoCを2週間実施し、分類精度92%を確認。",
        meetings="10/2 初回商談、10/16 デモ、10/30 PoC報告、11/13 役員プレゼン",
        concerns="繁忙期（12月）の立ち上げで現場が混乱しないか。",
        open_questions="既存のFAQ 1,200件を移行できるか。",
        handed_off_by=REP_FS,
    ),
    HandoffForm(
        account_name="Northwind Analytics",
        why_bought="Their CS team could not see which customers were going quiet.",
        problem="Spot churn risk a quarter before renewal instead of at renewal.",
        plan="Growth",
        seats=25,
        price_amount=Decimal(1800),
        currency="USD",
        billing_period="monthly",
        contract_start=date(2026, 12, 15),
        renewal_date=date(2027, 12, 14),
        decision_maker="VP Customer Success, Dana Reyes",
        stakeholders_external="Dana Reyes | VP CS | dana@northwind.example",
        handed_off_by=REP_FS,
    ),
    HandoffForm(
        account_name="Sakura Dental Group",
        problem="予約リマインドの電話を減らしたい。",
        plan="Starter",
        seats=5,
        price_amount=Decimal(96_000),
        currency="JPY",
        billing_period="annual",
        contract_start=date(2026, 12, 1),
        renewal_date=date(2027, 11, 30),
        handed_off_by=REP_IS,
    ),
]


def seed(settings: Settings, db: Database, clock: Clock = utcnow) -> list[int]:
    """Create the demo handoffs once; running the demo again reuses them."""
    ids: list[int] = []
    for form in SEED:
        with db.session() as s:
            existing = find_account(s, form.account_name or "")
            if existing is not None and existing.handoffs:
                ids.append(existing.handoffs[-1].id)
                continue
            h = service.create(
                s, form=form, actor=Actor(form.handed_off_by or REP_FS), clock=clock, rules=settings.rules
            )
            ids.append(h.id)
    with db.session() as s:  # CS has already taken the first one
        service.assign(s, handoff_id=ids[0], csm_user_id=CSM, actor=Actor(CS_LEAD, is_cs=True), clock=clock)
    return ids


DEMO_ACCOUNTS = [  # external id, name, plan, MRR, seats, daily active users: (baseline, last 7 days)
    ("MIRAI-001", "株式会社ミライ物流", "Enterprise", 750000, 200, (150, 196)),
    ("NW-2041", "Northwind Analytics", "Growth", 270000, 25, (20, 7)),
    ("SAKURA-77", "Sakura Dental Group", "Starter", 8000, 5, (4, 4)),
]


def seed_usage(settings: Settings, db: Database, today: date, clock: Clock = utcnow) -> None:
    """Accounts (linked to the handoffs by name) and five weeks of daily usage ending today, then a scan."""
    lines = ["account_id,name,plan,mrr,seats,contract_start,renewal_date,currency"]
    for ext, name, plan, mrr, seats, _ in DEMO_ACCOUNTS:
        renewal = today + timedelta(days=60 if ext == "NW-2041" else 300)
        lines.append(f"{ext},{name},{plan},{mrr},{seats},2025-12-01,{renewal.isoformat()},JPY")
    signals = ["account_id,date,metric,value"]
    for ext, *_, (usual, recent) in DEMO_ACCOUNTS:
        for n in range(35):
            day = (today - timedelta(days=n)).isoformat()
            active = recent if n < 7 else usual
            signals.append(f"{ext},{day},active_users,{active}")
            signals.append(f"{ext},{day},logins,{active * 3}")
    with db.session() as s:
        ingest_accounts(
            s, records(io.StringIO("\n".join(lines)), "csv"), as_of=today, now=clock(), today=today
        )
        ingest_signals(s, records(io.StringIO("\n".join(signals)), "csv"), today=today)
    with db.session() as s:
        scan(s, as_of=today, rules=settings.rules, clock=clock)


def run_demo(
    settings: Settings,
    db: Database,
    *,
    locale: str,
    out: TextIO,
    clock: Clock = utcnow,
    crm: DemoHubSpot | None = None,
) -> int:
    """Seed and print. Every day in it is the team's day (schedule.timezone), as the jobs count them:
    at 16:00 UTC Tokyo is already on the next day, and a UTC date would hide the reminders. ``crm`` is
    the fake HubSpot the won deal comes from (a test passes its own to see the calls)."""
    tr = translator(locale)
    today = local_date(clock, settings.rules.schedule.timezone)
    crm = crm or DemoHubSpot(now=clock(), today=today, locale=locale)
    ids = seed(settings, db, clock)
    rule, path = "━" * 78, db.engine.url.database
    print(
        f"{rule}\n{tr.t('cli.demo.title', locale=locale, path=path)}\n{tr.t('cli.demo.no_slack')}\n{rule}",
        file=out,
    )
    _print_handoffs(settings, db, tr, ids, out)
    _print_won_deal(settings, db, tr, crm, out, clock)
    seed_usage(settings, db, today, clock)
    _print_alerts(settings, db, tr, out)
    _print_reminders(settings, db, tr, today + timedelta(days=6), out)  # kickoffs due, a renewal 54 days out
    print(
        f"\n{rule}\n{tr.t('cli.demo.look_around', path=path)}\n{tr.t('cli.demo.in_slack')}",
        file=out,
    )
    return 0


def _print_handoffs(settings: Settings, db: Database, tr: Translator, ids: list[int], out: TextIO) -> None:
    """The cards as posted, the assigned CSM's DM and the submitter's nudge."""
    channel = settings.handoff_channel or "#cs-handoffs"
    with db.session() as s:
        handoffs = [service.get(s, i) for i in ids]
    for h in handoffs:
        print(f"\n▶ {tr.t('cli.demo.card', channel=channel)}", file=out)
        print(render_blocks(card(tr, h, timezone=settings.rules.schedule.timezone)), file=out)
    first, second = handoffs[0], handoffs[1]
    print(f"\n▶ {tr.t('cli.demo.csm_dm', user=first.csm_user_id)}", file=out)
    intro = tr.render("assigned_dm.j2", assigner=mention(CS_LEAD), account=first.account.name)
    print(render_blocks([_mrkdwn(intro), *checklist_blocks(tr, first)]), file=out)
    missing = [tr.t(f"item.{i.value}") for i in missing_items(second)]
    print(f"\n▶ {tr.t('cli.demo.nudge', account=second.account.name)}", file=out)
    nudge = tr.render("nudge.j2", account=second.account.name, missing=missing, posted=True)
    print(render_blocks([_mrkdwn(nudge)]), file=out)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _print_alerts(settings: Settings, db: Database, tr: Translator, out: TextIO) -> None:
    """The open alerts' cards, each in the channel it goes to."""
    with db.session() as s:
        alerts = s.scalars(select(Alert).where(Alert.state != "resolved").order_by(Alert.id)).all()
        for alert in alerts:
            account = s.get(Account, alert.account_id)
            channel = settings.alert_channel or "#cs-alerts"
            if alert.kind == "upsell":
                channel = settings.rules.alerts.upsell_channel or settings.handoff_channel or "#cs-handoffs"
            print(f"\n▶ {tr.t('cli.demo.alert', channel=channel)}", file=out)
            print(render_blocks(alert_card(tr, alert, account, rules=settings.rules)), file=out)


def _print_reminders(settings: Settings, db: Database, tr: Translator, day: date, out: TextIO) -> None:
    """The cadence reminders due on ``day``, one message per recipient."""
    with db.session() as s:
        due = reminders.due(s, day, settings.rules)
    for recipient in sorted({r.recipient or "" for r in due}):
        items = [r.payload() for r in due if (r.recipient or "") == recipient]
        handoffs_at = settings.handoff_channel or "#cs-handoffs"
        where = (
            tr.t("cli.demo.to_user", user=recipient)
            if recipient
            else tr.t("cli.demo.to_channel", channel=handoffs_at)
        )
        print(f"\n▶ {tr.t('cli.demo.reminders', day=tr.day(day), where=where)}", file=out)
        print(
            render_blocks(reminder_blocks(tr, {"recipient": recipient or None, "reminders": items})), file=out
        )


# --- a won deal from the fake HubSpot, end to end ------------------------------------------------------
DEMO_BACKFILL_DAYS = 7  # the demo's own, whatever baton.yml says: the deal was won yesterday
MODAL_FIELDS = (
    *("account_name", "plan", "seats", "price_amount", "billing_period", "contract_start", "renewal_date"),
    *("addons", "decision_maker", "stakeholders_external", "discussion"),
)
DEMO_CARD_CHANNEL = "C0DEMOHND"  # where the demo says Slack posted the card
REP_ADDS = {  # what the rep types into the prefilled form before submitting: what the CRM cannot know
    "en": "Support tickets are answered in 3 days; they need first replies within a day by the busy season.",
    "ja": "問い合わせの初回回答に3日かかっている。繁忙期までに1日以内にしたい。",
}


@dataclass
class _Env:
    """What crm.writeback.send needs of its caller (bot/delivery.py's Delivery, in Slack)."""

    db: Database
    settings: Settings
    clock: Clock


def _print_won_deal(
    settings: Settings, db: Database, tr: Translator, crm: DemoHubSpot, out: TextIO, clock: Clock
) -> None:
    """The real pass, DM, form, handoff and write-back, with HubSpot answered in process: the pass
    records the deal and queues the owner's DM (``on_won=announce``), the DM and the modal it opens are
    printed, the handoff is created from that form with the deal linked before its card, and the
    write-back sender writes the note to the fake, which keeps what was POSTed."""
    hs_settings = replace(
        settings,
        hubspot_access_token=TOKEN,
        hubspot_api_url=BASE_URL,
        salesforce_client_id="",
        salesforce_client_secret="",
        rules=replace(settings.rules, crm=replace(settings.rules.crm, hubspot=crm.rules)),
    )
    with crm.client() as http:
        tz = settings.rules.schedule.timezone
        hs = HubSpot(BASE_URL, TOKEN, crm.rules, client=http, sleep=lambda _: None, timezone=tz)
        with db.session() as s:
            since = sync.watermark(s, hs.name, clock=clock, backfill_days=DEMO_BACKFILL_DAYS)
        fetched = sync.fetch(hs, since, clock=clock)
        with db.session() as s:
            done = sync.record(s, fetched, clock=clock, on_won=sync.announce)
        result = tr.t("cli.crm.deals", crm="HubSpot", new=len(done.new), already=done.already)
        print(f"\n▶ {tr.t('cli.demo.crm_pass', result=result)}", file=out)
        with db.session() as s:
            row = s.scalars(select(CrmDeal).where(CrmDeal.crm == hs.name, CrmDeal.deal_id == DEAL_ID)).one()
            deal, row_id, handoff_id = WonDeal.from_json(row.deal), row.id, row.handoff_id
        _, blocks = won_deal_dm(tr, deal, row_id, REP_FS)  # the owner's email is REP_FS's in Slack
        print(f"\n▶ {tr.t('cli.demo.won_dm', user=REP_FS)}", file=out)
        print(render_blocks(blocks), file=out)
        form = handoff_form(deal, handed_off_by=REP_FS, kinds=activity_kinds(tr))
        print(f"\n▶ {tr.t('cli.demo.modal')}", file=out)
        for name in MODAL_FIELDS:
            if (value := _shown(tr, form, name)) is not None:
                label = f"  {tr.t('field.' + name)}{_colon(tr)}"
                lines = value.splitlines()
                print(label + lines[0], *("      " + x for x in lines[1:]), sep="\n", file=out)
        problem = REP_ADDS.get(tr.locale, REP_ADDS["en"])
        print(
            f"\n▶ {tr.t('cli.demo.rep_adds', user=REP_FS)}\n  {tr.t('field.problem')}{_colon(tr)}{problem}",
            file=out,
        )
        form = replace(form, problem=problem)
        handoff_id = handoff_id or _submit(settings, db, form, row_id, clock)
        _post_card(settings, db, tr, handoff_id, out, clock)
        _write_back(hs_settings, db, tr, crm, http, handoff_id, out, clock)


def _colon(tr: Translator) -> str:
    return "：" if tr.locale == "ja" else ": "


def _shown(tr: Translator, form: HandoffForm, name: str) -> str | None:
    value = getattr(form, name)
    if value in (None, ""):
        return None
    if name == "price_amount":
        return tr.money(value, form.currency)
    if name == "billing_period":
        return tr.t(f"billing.{value}")
    if isinstance(value, date):
        return tr.day(value)
    return str(value)


def _submit(settings: Settings, db: Database, form: HandoffForm, crm_deal: int, clock: Clock) -> int:
    """The modal submitted unchanged, as bot/listeners/crm.py's ``submit`` stores it: the handoff, the
    deal linked before its card (so the card queues the write-back), and the checklist nudge."""
    with db.session() as s:
        h = service.create(s, form=form, actor=Actor(REP_FS), clock=clock, rules=settings.rules)
        if not link_deal(s, crm_deal, h):
            raise RuntimeError(f"the demo deal {crm_deal} was taken by another handoff")
        now = clock()
        service.queue_card(s, h, settings.handoff_channel or "#cs-handoffs", now)
        queue_writeback(s, h, now)
        service.queue_nudge(s, h, now)
        return h.id


def _post_card(
    settings: Settings, db: Database, tr: Translator, handoff_id: int, out: TextIO, clock: Clock
) -> None:
    """The new handoff's card, and Slack's answer recorded as delivery records it (the card's link is
    what the CRM note points to)."""
    channel = settings.handoff_channel or "#cs-handoffs"
    with db.session() as s:
        h = service.get(s, handoff_id)
        if not h.message_ts:
            ts = f"{int(clock().timestamp())}.{handoff_id:06d}"
            link = f"https://baton-demo.slack.com/archives/{DEMO_CARD_CHANNEL}/p{ts.replace('.', '')}"
            service.record_post(s, handoff_id=h.id, channel_id=DEMO_CARD_CHANNEL, ts=ts, permalink=link)
            s.execute(
                update(Outbox)
                .where(Outbox.handoff_id == h.id, Outbox.action == "card", Outbox.state == "pending")
                .values(state="sent", sent_at=clock(), result_ts=ts)
            )
            s.flush()
            h = service.get(s, handoff_id)
        print(f"\n▶ {tr.t('cli.demo.card', channel=channel)}", file=out)
        print(render_blocks(card(tr, h, timezone=settings.rules.schedule.timezone)), file=out)


def _write_back(
    settings: Settings,
    db: Database,
    tr: Translator,
    crm: DemoHubSpot,
    http: Any,
    handoff_id: int,
    out: TextIO,
    clock: Clock,
) -> None:
    """The queued ``crm_writeback`` rows sent by crm/writeback.py's sender (the one delivery calls),
    then what it POSTed to HubSpot: the note on the deal and the company, and the kickoff task."""
    with db.session() as s:
        queue_writeback(s, service.get(s, handoff_id), clock())  # none pending: a --keep run writes again
        jobs = s.execute(
            select(Outbox.id, Outbox.payload, Outbox.created_at)
            .where(Outbox.handoff_id == handoff_id, Outbox.action == WRITEBACK, Outbox.state == "pending")
            .order_by(Outbox.id)
        ).all()
    before = len(crm.requests)
    for job_id, payload, created in jobs:
        writeback.send(_Env(db, settings, clock), handoff_id, payload, created=created, words=tr, client=http)
        with db.session() as s:
            s.execute(update(Outbox).where(Outbox.id == job_id).values(state="sent", sent_at=clock()))
    for req in crm.written():
        if crm.requests.index(req) < before:
            continue
        props = (req.body or {}).get("properties") or {}
        print(f"\n▶ {tr.t('cli.demo.crm_write', crm='HubSpot', call=f'{req.method} {req.path}')}", file=out)
        if "hs_note_body" in props:
            for line in _html_text(str(props["hs_note_body"])):
                print(f"  {line}", file=out)
        if "hs_task_subject" in props:
            due = datetime.fromisoformat(str(props["hs_timestamp"])).date()
            print(f"  {props['hs_task_subject']} · {tr.t('cli.demo.task_due', day=tr.day(due))}", file=out)


def _html_text(body: str) -> list[str]:
    """A note's HTML as the CRM shows it: a line a paragraph, its breaks indented under it."""
    lines: list[str] = []
    for para in re.split(r"</p>\s*<p>", body):
        parts = [html.unescape(re.sub(r"<[^>]+>", "", x)) for x in re.split(r"<br\s*/?>", para)]
        lines.extend([parts[0], *("    " + x for x in parts[1:])])
    return lines
