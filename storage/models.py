"""The relational model. Handoff checklist answers are real columns (not one JSON blob), so edits are
versioned row updates and two editors cannot silently overwrite each other (``version_id_col``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from storage.types import Money, UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money(), dict[str, Any]: JSON()}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Case- and width-folded name for lookups ("acme corp" finds "Acme Corp", "ＡＣＭＥ" finds "ACME").
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    plan: Mapped[str | None] = mapped_column(String(200))
    seats: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    mrr: Mapped[Decimal | None]
    contract_start: Mapped[date | None] = mapped_column(Date)
    renewal_date: Mapped[date | None] = mapped_column(Date)
    csm_user_id: Mapped[str | None] = mapped_column(String(32))
    touch_tier: Mapped[str | None] = mapped_column(String(8))
    # From the company's own account data (ingest); handoff-born accounts get linked by name.
    external_id: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    churned_on: Mapped[date | None] = mapped_column(Date)
    csm_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    handoffs: Mapped[list[Handoff]] = relationship(back_populates="account", order_by="Handoff.id")

    __table_args__ = (UniqueConstraint("external_id", name="uq_accounts_external_id"),)


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)  # any change: optimistic locking
    revision: Mapped[int] = mapped_column(Integer, default=1)  # checklist edits only: stale-edit check

    submitted_by: Mapped[str] = mapped_column(String(32), index=True)
    handed_off_by: Mapped[str] = mapped_column(String(32))
    csm_user_id: Mapped[str | None] = mapped_column(String(32))
    accepted_by: Mapped[str | None] = mapped_column(String(32))
    accepted_at: Mapped[datetime | None]
    assigned_by: Mapped[str | None] = mapped_column(String(32))
    assigned_at: Mapped[datetime | None]

    # 1. Challenges and expectations
    why_bought: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    success_criteria: Mapped[str | None] = mapped_column(Text)
    # 2. Contract
    plan: Mapped[str] = mapped_column(String(200))
    seats: Mapped[int]
    price_amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    billing_period: Mapped[str] = mapped_column(String(8))
    contract_start: Mapped[date] = mapped_column(Date)
    renewal_date: Mapped[date] = mapped_column(Date)
    addons: Mapped[str | None] = mapped_column(Text)
    # 3. Background
    decision_process: Mapped[str | None] = mapped_column(Text)
    decision_maker: Mapped[str | None] = mapped_column(Text)
    competitors: Mapped[str | None] = mapped_column(Text)
    why_won: Mapped[str | None] = mapped_column(Text)
    # 4. Communication history
    discussion: Mapped[str | None] = mapped_column(Text)
    meetings: Mapped[str | None] = mapped_column(Text)
    concerns: Mapped[str | None] = mapped_column(Text)
    open_questions: Mapped[str | None] = mapped_column(Text)

    touch_tier: Mapped[str] = mapped_column(String(8))
    touch_tier_suggested: Mapped[str] = mapped_column(String(8))

    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    account: Mapped[Account] = relationship(back_populates="handoffs")
    stakeholders: Mapped[list[Stakeholder]] = relationship(
        back_populates="handoff", order_by="Stakeholder.position", cascade="all, delete-orphan"
    )
    events: Mapped[list[HandoffEvent]] = relationship(
        back_populates="handoff", order_by="HandoffEvent.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}
    # At most one open handoff per account, even when two people submit at the same moment.
    __table_args__ = (
        Index(
            "uq_handoffs_one_open_per_account",
            "account_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )


class Stakeholder(Base):
    __tablename__ = "stakeholders"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))

    handoff: Mapped[Handoff] = relationship(back_populates="stakeholders")


class HandoffEvent(Base):
    """Append-only audit trail; written in the same transaction as the change it records."""

    __tablename__ = "handoff_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor_user_id: Mapped[str] = mapped_column(String(32))
    subject_user_id: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime]

    handoff: Mapped[Handoff] = relationship(back_populates="events")


class AccountSnapshot(Base):
    """An account as one accounts file described it on one date: the history churn and NRR need."""

    __tablename__ = "account_snapshots"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    plan: Mapped[str | None] = mapped_column(String(200))
    mrr: Mapped[Decimal | None]
    seats: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    # The renewal the file named that day: "days to renewal" as it stood then (model features, 0008).
    renewal_date: Mapped[date | None] = mapped_column(Date)


class Signal(Base):
    """One daily usage value. Keyed day first: files arrive a day at a time, so inserts append to the
    index, and scans read a window of days."""

    __tablename__ = "signals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float]

    # NPS answers are a few rows among millions, and the features read every one up to a day: without
    # this a read of them scanned the whole table (2 s of a 10,000-account scan's 9), keyed day first
    __table_args__ = (
        Index(
            "ix_signals_nps",
            "day",
            "account_id",
            sqlite_where=text("metric = 'nps'"),
            postgresql_where=text("metric = 'nps'"),
        ),
        {"sqlite_with_rowid": False},
    )


def is_nps() -> ColumnElement[bool]:
    """``metric = 'nps'`` written out, not bound: only a literal lets SQLite's planner use the partial
    index ix_signals_nps (a bound parameter could be any metric)."""
    return Signal.metric == literal_column("'nps'")


class Alert(Base):
    """A churn-risk or upsell alert; at most one not-yet-resolved alert per account and kind."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    score: Mapped[int | None]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    as_of: Mapped[date] = mapped_column(Date)
    raised_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    owner_user_id: Mapped[str | None] = mapped_column(String(32))
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None]
    handed_to_is_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(String(500))  # for links from the Home tab
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    account: Mapped[Account] = relationship()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index(
            "uq_alerts_one_unresolved_per_kind",
            "account_id",
            "kind",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
    )


class AlertEvent(Base):
    """Audit trail of an alert: raised, worsened, acknowledged, assigned, snoozed, resolved, handed to IS."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime]


class Outbox(Base):
    """Every message to Slack, written in the same transaction as the change it announces (an alert's,
    a handoff's, a reminder run's) and delivered afterwards with retries: none lost, none posted twice."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    # the card a handoff message belongs to: its updates and thread notes wait for the card's post
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # the message kind: bot/delivery.py's SENDERS
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # also the claim token: see bot/delivery.py
    # A send whose outcome is unknown (lost answer, crash mid-call): check Slack before sending again.
    ambiguous: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    result_ts: Mapped[str | None] = mapped_column(String(32))


class UpsellOpportunity(Base):
    """An upsell chance CS handed to inside sales: the shared KPI "opportunities found"."""

    __tablename__ = "upsell_opportunities"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    handed_by: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class JobRun(Base):
    """One row per (job, scheduled time): the instance that inserts it runs the job, the others skip."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scheduled_for: Mapped[datetime] = mapped_column(primary_key=True)
    instance: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class Touch(Base):
    """A customer touch a CSM logged (kickoff, check-in, QBR...): what the touch-model cadence counts."""

    __tablename__ = "touches"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    logged_by: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]  # when the touch happened (a CSM may log yesterday's call today)
    logged_at: Mapped[datetime | None]  # when it was logged; null for rows from before migration 0004


class HealthDay(Base):
    """Accounts per health band on a day, as the daily scan found them: the digest's trend reads
    these rather than scoring every account again for each of its 12 weeks."""

    __tablename__ = "health_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    green: Mapped[int]
    yellow: Mapped[int]
    red: Mapped[int]
    unknown: Mapped[int]
    computed_at: Mapped[datetime]


class CompanyMetric(Base):
    """A company-level daily figure (THE MODEL funnel, inside-sales activity) from the team's CRM or
    dialer: one value per (day, metric); re-sending a day corrects it."""

    __tablename__ = "company_metrics"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float]


class ReminderSent(Base):
    """The cadence reminders already sent, one row per (account, stage key such as
    ``onboarding:12:3:due`` or ``renewal:2027-04-01:30``): each reminder goes out once, whichever
    instance runs the daily job, and the row is written with the outbox row that carries it."""

    __tablename__ = "reminders_sent"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str | None] = mapped_column(String(32))
    sent_for: Mapped[date] = mapped_column(Date)  # the local day of the run
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("account_id", "key", name="uq_reminders_sent_account_key"),)


class SlackUserEmail(Base):
    """A CSM's email (an accounts file's ``csm_email``) as Slack's users.lookupByEmail answered it on
    ``looked_up_at``: the Slack user, or a miss (``error`` such as ``users_not_found``). Kept so the
    rate-limited lookup runs once a week per CSM, and an unknown email is reported once
    (``reported_at``), not every day."""

    __tablename__ = "slack_user_emails"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)  # stripped and lower-cased
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    error: Mapped[str | None] = mapped_column(String(64))
    looked_up_at: Mapped[datetime]
    reported_at: Mapped[datetime | None]


class RequestSeen(Base):
    """A request already acted on, keyed by what Slack sends again on a retry or a replay (a modal's
    view id, a slash command's trigger id). Written in the same transaction as the change, so a repeat
    finds it and is answered as the first was, with nothing written twice; the primary key settles two
    copies arriving at once."""

    __tablename__ = "requests_seen"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ChurnModel(Base):
    """A trained churn or upsell model as plain numbers (feature names, scaler, coefficients, threshold),
    so any instance, after any restart, scores with exactly the model the backtest measured; no pickle."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # churn | upsell
    version: Mapped[int]  # 1, 2, ... per kind
    algorithm: Mapped[str] = mapped_column(String(32))
    trained_at: Mapped[datetime]
    data_through: Mapped[date] = mapped_column(Date)
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]]
    threshold: Mapped[float | None]
    budget: Mapped[float | None]  # alerts per 100 accounts per week the threshold was set for
    backtest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rows, weeks, events

    __table_args__ = (UniqueConstraint("kind", "version", name="uq_models_kind_version"),)


class DataImport(Base):
    """A large import applied in short transactions so it never holds the write lock for long (on SQLite
    one writer locks the whole file). ``applying`` with a stale heartbeat means its process died mid-way:
    the next import (or `app.py serve`) rolls it back from its undo rows, so an import is all or nothing."""

    __tablename__ = "data_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # applying, done, rolled_back
    rows: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class SignalUndo(Base):
    """What a signals import overwrote: the previous value of each row it wrote (None: there was none)."""

    __tablename__ = "signal_undo"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("data_imports.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)  # the row's place in the file, for chunked undo
    day: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int]
    metric: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[float | None]


class AccountUndo(Base):
    """What an accounts import overwrote, a row per file line: the account as it was (``created``: the
    import made it) and its snapshot of ``as_of`` as it was (None: there was none)."""

    __tablename__ = "account_undo"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("data_imports.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)  # the row's line in the file, for chunked undo
    account_id: Mapped[int]
    as_of: Mapped[date] = mapped_column(Date)
    created: Mapped[bool]
    old_account: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    old_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ModelDecision(Base):
    """Who decides a kind of alert (the model or the rules) from when, and why: a row each time that
    changes, written in the scan's transaction; the digest announces each once (``announced_at``)."""

    __tablename__ = "model_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # churn_risk | upsell
    decided_by: Mapped[str] = mapped_column(String(8))  # model | rules
    why: Mapped[str] = mapped_column(
        String(16)
    )  # no_model, cold_start, no_backtest, rules_better, beats_rules
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_at: Mapped[datetime]
    announced_at: Mapped[datetime | None]


class CrmDeal(Base):
    """A won deal Baton has taken from a CRM, once: the CRM's own id is the key, so a deal seen again (a
    second poll, a repeated webhook) is never processed twice. ``deal`` is the neutral WonDeal
    (crm/model.py) the prefilled handoff modal is opened from; ``announced_at`` is set when the owner's
    "Start handoff" DM is queued (bot/), ``nudged_at`` when it went unanswered for ``crm.nudge_hours``."""

    __tablename__ = "crm_deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))  # hubspot | salesforce
    deal_id: Mapped[str] = mapped_column(String(64))
    company_id: Mapped[str | None] = mapped_column(String(64))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    deal: Mapped[dict[str, Any]] = mapped_column(default=dict)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="SET NULL"))
    found_at: Mapped[datetime]
    announced_at: Mapped[datetime | None]
    nudged_at: Mapped[datetime | None]  # the owner nudged and the sales lead told, once (crm.nudge_hours)
    # where the "Start handoff" DM went (a user id, or the lead's channel) and its ts: edited once the
    # handoff is started, so the button is not left to click
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("crm", "deal_id", name="uq_crm_deals_crm_deal"),)


class CrmCursor(Base):
    """Where the last poll of a CRM stopped (its watermark), per CRM and stream: ``won_deals``."""

    __tablename__ = "crm_cursors"

    crm: Mapped[str] = mapped_column(String(16), primary_key=True)
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class CrmWriteback(Base):
    """What Baton wrote into a CRM for a handoff, one row per (handoff, CRM, kind): the CRM's own id of
    the note or task, so an edit updates it and a retry never makes a second one. ``attempted_at`` is set
    (and committed) before a create is sent: a row with it and no ``object_id`` means the answer was
    lost, and the next attempt looks the object up before creating again."""

    __tablename__ = "crm_writebacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    crm: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # note | deal_note | company_note | task
    target_id: Mapped[str] = mapped_column(String(64))  # the deal or company it hangs on
    object_id: Mapped[str | None] = mapped_column(String(64))
    attempted_at: Mapped[datetime | None]
    written_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("handoff_id", "crm", "kind", name="uq_crm_writebacks_kind"),)


class CrmInbox(Base):
    """Deal ids a signed HubSpot webhook named, kept until the next CRM pass reads them: the webhook
    answers at once and makes no CRM call. Repeated deliveries add nothing (one pending row a deal)."""

    __tablename__ = "crm_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    deal_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(index=True)
