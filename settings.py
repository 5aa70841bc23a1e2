"""Configuration: environment variables for deployment facts and secrets, one YAML file for rules.

Secrets are kept out of ``repr`` so a settings object can be logged safely.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ROOT = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = f"sqlite:///{ROOT / 'baton.db'}"  # BATON_DATA_DIR moves it (the image: /data)
DEFAULT_RULES_FILE = ROOT / "baton.yml"
SUPPORTED_LOCALES = ("en", "ja")


class ConfigError(ValueError):
    """Raised with a message a person can act on when configuration is wrong."""


@dataclass(frozen=True)
class TierThresholds:
    """Annual contract value (ARR) at or above which an account is high / mid touch, per currency."""

    high: Decimal
    mid: Decimal


MetricNames = dict[str, dict[str, str]]  # metric -> {locale: display name}

# How people read the common metrics; `health.metric_names` in baton.yml adds to or overrides these.
DEFAULT_METRIC_NAMES: MetricNames = {
    "active_users": {"en": "active users", "ja": "アクティブユーザー数"},
    "logins": {"en": "logins", "ja": "ログイン数"},
    "api_calls": {"en": "API calls", "ja": "API呼び出し数"},
    "projects": {"en": "projects", "ja": "プロジェクト数"},
    "seats_used": {"en": "seats used", "ja": "利用席数"},
    "support_tickets": {"en": "support tickets", "ja": "問い合わせ件数"},
    "nps": {"en": "NPS", "ja": "NPS"},
}


def metric_name(metric: str, locale: str, names: MetricNames | None = None) -> str:
    """A metric's display name in ``locale`` (then English); an unnamed metric keeps its own key."""
    entry = (names if names is not None else DEFAULT_METRIC_NAMES).get(metric) or {}
    return entry.get(locale) or entry.get("en") or metric


def _metric_names(raw: Any, where: str) -> MetricNames:
    """`{logins: {en: sign-ins, ja: サインイン数}}`, or one name for every language, over the defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: metric_names must map each metric to its names")
    out = {k: dict(v) for k, v in DEFAULT_METRIC_NAMES.items()}
    for metric, names in raw.items():
        if isinstance(names, str) and names.strip():
            out[str(metric)] = {locale: names.strip() for locale in SUPPORTED_LOCALES}
        elif isinstance(names, dict) and all(isinstance(v, str) and v.strip() for v in names.values()):
            bad = set(map(str, names)) - set(SUPPORTED_LOCALES)
            if bad:
                raise ConfigError(
                    f"{where}: metric_names.{metric}: unknown language(s) {', '.join(sorted(bad))} "
                    f"(use {', '.join(SUPPORTED_LOCALES)})"
                )
            out[str(metric)] = {**out.get(str(metric), {}), **{str(k): v.strip() for k, v in names.items()}}
        else:
            raise ConfigError(f"{where}: metric_names.{metric} must be a name or {{en: ..., ja: ...}}")
    return out


@dataclass(frozen=True)
class HealthRules:
    recent_days: int = 7
    baseline_days: int = 28
    activity_metric: str = "active_users"
    usage_metrics: tuple[str, ...] = ("active_users", "logins")
    usage_weights: dict[str, float] = field(default_factory=dict)  # per usage metric; default 1 each
    green: int = 70
    yellow: int = 40
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "usage_trend": 30,
            "inactivity": 25,
            "seat_utilization": 20,
            "renewal": 10,
            "nps": 10,
            "support": 5,
        }
    )
    inactive_days: int = 14
    data_stale_days: int = 3  # the scan warns when the book's latest signals are older than this
    metric_names: MetricNames = field(default_factory=lambda: _metric_names({}, "health"))


MODEL_ALGORITHMS = ("logistic_regression", "gradient_boosting")  # model/store.ALGORITHMS


@dataclass(frozen=True)
class AlertRules:
    drop_pct: float = 40
    inactive_days: int = 14
    renewal_days: int = 90
    utilization_pct: float = 90
    growth_pct: float = 25
    limit_pct: float = 95
    plan_limits: dict[str, dict[str, float]] = field(default_factory=dict)
    cooldown_days: int = 14
    snooze_days: int = 7
    upsell_channel: str = ""
    inside_sales_channel: str = ""
    # with a trained model: alerts a week per 100 accounts (churn + upsell, hard rules included), split
    # by share in percent; the rules' soft thresholds above then no longer raise alerts on their own
    budget_per_100_accounts_week: float = 2
    budget_shares: dict[str, float] = field(default_factory=lambda: {"churn": 75, "upsell": 25})
    # cold start: the rules decide until the model was trained on this many churns (upgrades, for the
    # upsell model) over this many weeks, and its backtest beat the rules on the same weeks
    model_min_events: int = 20
    model_min_weeks: int = 26
    # the scan retrains when the stored model is this many days older than the data
    model_retrain_days: int = 7
    # the churn and upsell models' candidates: the logistic regression (the explainable default, always
    # there) and, when listed, gradient boosting, stored for a kind only when its backtest beats the
    # regression on the same weeks (model/backtest.choose)
    model_algorithms: tuple[str, ...] = MODEL_ALGORITHMS

    def __post_init__(self) -> None:
        algos = self.model_algorithms
        if (
            not isinstance(algos, list | tuple)
            or not all(isinstance(a, str) for a in algos)
            or not set(algos) <= set(MODEL_ALGORITHMS)
            or "logistic_regression" not in algos
            or len(set(algos)) != len(algos)
        ):
            raise ValueError(
                f"model_algorithms {algos!r}: list logistic_regression, optionally with gradient_boosting, "
                "e.g. [logistic_regression, gradient_boosting]"
            )
        object.__setattr__(self, "model_algorithms", tuple(algos))
        for name in ("model_min_events", "model_min_weeks", "model_retrain_days"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000:
                raise ValueError(f"{name} {v!r}: use a whole number of 1 or more, e.g. 20")
        b = self.budget_per_100_accounts_week
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0 < b <= 100:
            raise ValueError(f"budget_per_100_accounts_week {b!r}: use a number above 0, e.g. 2")
        shares = self.budget_shares
        if not isinstance(shares, dict) or set(shares) != {"churn", "upsell"}:
            raise ValueError(
                f"budget_shares {shares!r}: give churn and upsell, e.g. {{churn: 75, upsell: 25}}"
            )
        vals = list(shares.values())
        if (
            any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in vals)
            or sum(vals) != 100
        ):
            raise ValueError(f"budget_shares {shares!r}: percentages of 0 or more that add up to 100")


@dataclass(frozen=True)
class ScheduleRules:
    timezone: str = "Asia/Tokyo"
    scan: dict[str, Any] = field(default_factory=lambda: {"hour": 7, "minute": 0})
    pull: dict[str, Any] = field(default_factory=lambda: {"hour": 6, "minute": 30})
    digest: dict[str, Any] = field(default_factory=lambda: {"day_of_week": "mon", "hour": 9, "minute": 0})
    cadence: dict[str, Any] = field(default_factory=lambda: {"hour": 8, "minute": 30})
    misfire_grace_seconds: int = 3600


@dataclass(frozen=True)
class PullRules:
    url: str = ""
    auth_header: str = field(default="", repr=False)
    items_path: str = "data"
    next_path: str = "next"
    fields: dict[str, str] = field(
        default_factory=lambda: {
            "account_id": "account_id",
            "date": "date",
            "metric": "metric",
            "value": "value",
        }
    )
    max_pages: int = 1000


@dataclass(frozen=True)
class DigestRules:
    base_currency: str = "JPY"
    fx_rates: dict[str, float] = field(default_factory=lambda: {"USD": 150.0, "EUR": 160.0})
    gross_margin_pct: float | None = None  # for LTV; unset: LTV says it needs it

    def __post_init__(self) -> None:
        m = self.gross_margin_pct
        if m is not None and (isinstance(m, bool) or not isinstance(m, int | float) or not 0 < m <= 100):
            raise ValueError(f"gross_margin_pct {m!r}: use a percentage above 0 and at most 100, e.g. 80")


# What each ingest column of an accounts file is called in the CRM: `app.py crm sync` maps companies
# (HubSpot) or Accounts (Salesforce) through it into the same ingest as files. A dotted path reads a
# related field (Salesforce `Owner.Email`); a column left out is left empty.
HUBSPOT_ACCOUNT_FIELDS = {
    "account_id": "hs_object_id",
    "name": "name",
    "plan": "baton_plan",
    "mrr": "baton_mrr",
    "seats": "baton_seats",
    "contract_start": "baton_contract_start",
    "renewal_date": "baton_renewal_date",
    "csm_email": "baton_csm_email",
    "currency": "baton_currency",
}
SALESFORCE_ACCOUNT_FIELDS = {
    "account_id": "Id",
    "name": "Name",
    "plan": "Plan__c",
    "mrr": "MRR__c",
    "seats": "Seats__c",
    "contract_start": "Contract_Start__c",
    "renewal_date": "Renewal_Date__c",
    "csm_email": "CSM_Email__c",
}
ACCOUNT_COLUMNS = (
    "account_id", "name", "plan", "mrr", "seats", "contract_start", "renewal_date",
    "csm_email", "segment", "currency", "status", "churned_on", "touch_tier",
)  # fmt: skip
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _account_fields(raw: Any, default: dict[str, str], where: str) -> dict[str, str]:
    """``{ingest column: CRM field}``; account_id and name are needed to key the accounts."""
    if raw is None:
        return dict(default)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: map each accounts column to a CRM field, e.g. {{mrr: MRR__c}}")
    out = {str(k): str(v) for k, v in raw.items() if v not in (None, "")}
    if bad := sorted(set(out) - set(ACCOUNT_COLUMNS)):
        raise ValueError(f"{where}: unknown column(s) {', '.join(bad)} (use {', '.join(ACCOUNT_COLUMNS)})")
    if missing := [c for c in ("account_id", "name") if c not in out]:
        raise ValueError(f"{where}: {' and '.join(missing)} must be mapped")
    if bad := sorted(v for v in out.values() if not _FIELD_NAME.match(v)):
        raise ValueError(f"{where}: {', '.join(bad)}: not a field name (letters, digits, _ and dots)")
    return out


@dataclass(frozen=True)
class HubSpotRules:
    api_version: str = "2026-03"  # date-versioned paths: /crm/objects/2026-03/...; /crm/v3 is retired
    won_stages: tuple[str, ...] = ("closedwon",)  # dealstage ids that mean won, in every pipeline
    renewal_property: str = ""  # a deal property with the term's end; empty: close date + term
    term_months: int = 12  # when neither the property nor the line items give a term
    sync_accounts: bool = True
    account_filter: dict[str, str] = field(default_factory=lambda: {"lifecyclestage": "customer"})
    account_fields: dict[str, str] = field(default_factory=lambda: dict(HUBSPOT_ACCOUNT_FIELDS))
    writeback: bool = True  # the handoff back into HubSpot: note, CSM property, kickoff task
    # the company property that takes the CSM: an owner property (hubspot_owner_id, or any *_owner_id)
    # takes the CSM's HubSpot owner id, found by email; any other property takes the email itself
    csm_property: str = "hubspot_owner_id"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{4}-\d{2}(-beta)?", str(self.api_version)):
            raise ValueError(f"api_version {self.api_version!r}: a HubSpot API date, e.g. 2026-03")
        _check_common(self)
        _check_writeback(self, "csm_property")
        object.__setattr__(
            self,
            "account_fields",
            _account_fields(self.account_fields, HUBSPOT_ACCOUNT_FIELDS, "account_fields"),
        )


@dataclass(frozen=True)
class SalesforceRules:
    api_version: str = "v62.0"
    won_where: str = "IsWon = true"  # a SOQL condition: which opportunities are won
    renewal_field: str = ""  # an Opportunity field with the term's end; empty: close date + term
    currency_field: str = ""  # CurrencyIsoCode in multi-currency orgs; empty: `currency`
    currency: str = "JPY"
    term_months: int = 12
    sync_accounts: bool = True
    account_where: str = "Type = 'Customer'"
    account_fields: dict[str, str] = field(default_factory=lambda: dict(SALESFORCE_ACCOUNT_FIELDS))
    writeback: bool = True  # the handoff back into Salesforce: notes, the CSM field, kickoff task
    # the Account field that takes the CSM: a User lookup (OwnerId, or any field ending in Id) takes the
    # CSM's active User id, found by email; any other field takes the email itself
    csm_field: str = "OwnerId"

    def __post_init__(self) -> None:
        _check_writeback(self, "csm_field")
        if not re.fullmatch(r"v\d{2,3}\.0", str(self.api_version)):
            raise ValueError(f"api_version {self.api_version!r}: a Salesforce API version, e.g. v62.0")
        if not re.fullmatch(r"[A-Z]{3}", str(self.currency)):
            raise ValueError(f"currency {self.currency!r}: a 3-letter code, e.g. JPY")
        _check_common(self)
        for name in ("renewal_field", "currency_field"):
            v = getattr(self, name)
            if v and not _FIELD_NAME.match(v):
                raise ValueError(f"{name} {v!r}: not a field name")
        object.__setattr__(
            self,
            "account_fields",
            _account_fields(self.account_fields, SALESFORCE_ACCOUNT_FIELDS, "account_fields"),
        )


def _check_writeback(rules: Any, csm: str) -> None:
    if not isinstance(rules.writeback, bool):
        raise ValueError(f"writeback {rules.writeback!r}: true or false")
    v = getattr(rules, csm)
    if v and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,99}", str(v)):
        raise ValueError(f"{csm} {v!r}: not a field name (letters, digits and _); empty writes no CSM")


def _check_common(rules: Any) -> None:
    t = rules.term_months
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 120:
        raise ValueError(f"term_months {t!r}: a whole number of months from 1 to 120, e.g. 12")
    if not isinstance(rules.sync_accounts, bool):
        raise ValueError(f"sync_accounts {rules.sync_accounts!r}: true or false")


@dataclass(frozen=True)
class CrmRules:
    """`crm:` in baton.yml. Either CRM is on when its credentials are in the environment."""

    poll_minutes: int = 15  # the scheduled `crm sync`
    backfill_days: int = 7  # the first pass takes deals won this far back, not the CRM's whole history
    nudge_hours: int = 24  # a "Start handoff" DM unanswered this long: the owner is nudged, the lead told
    # Who hears of a won deal whose owner has no Slack user, and of an unanswered DM: a Slack user id
    # (U…/W…, a DM) or a channel id (C…/G…); empty: BATON_HANDOFF_CHANNEL
    sales_lead: str = ""
    hubspot: HubSpotRules = field(default_factory=HubSpotRules)
    salesforce: SalesforceRules = field(default_factory=SalesforceRules)

    def __post_init__(self) -> None:
        p = self.poll_minutes
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 1440:
            raise ValueError(f"poll_minutes {p!r}: a whole number of minutes from 1 to 1440, e.g. 15")
        b = self.backfill_days
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 365:
            raise ValueError(f"backfill_days {b!r}: a whole number of days from 0 to 365, e.g. 7")
        n = self.nudge_hours
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 720:
            raise ValueError(f"nudge_hours {n!r}: a whole number of hours from 1 to 720, e.g. 24")
        lead = self.sales_lead
        if not isinstance(lead, str) or (lead and not re.fullmatch(r"[UWCG][A-Z0-9]{2,30}", lead)):
            raise ValueError(
                f"sales_lead {lead!r}: a Slack user id (U0123ABCD) or channel id (C0123ABCD), or empty"
            )

    @classmethod
    def load(cls, raw: Any, where: str) -> CrmRules:
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"{where}: write it as a mapping (poll_minutes, hubspot, salesforce)")
        data = dict(raw or {})
        for name, rules in (("hubspot", HubSpotRules), ("salesforce", SalesforceRules)):
            section = dict(data.get(name) or {})
            if "won_stages" in section:
                section["won_stages"] = tuple(str(s) for s in section["won_stages"] or ())
            if "account_filter" in section:
                section["account_filter"] = {
                    str(k): str(v) for k, v in (section["account_filter"] or {}).items()
                }
            data[name] = _section(rules, section, f"{where}.{name}")
        return _section(cls, data, where)


TOUCH_KINDS = ("kickoff", "check_in", "qbr", "welcome", "usage_check")
TIERS = ("high", "mid", "tech")
Plan = tuple[tuple[str, int], ...]  # (touch kind, due this many days after the handoff)
DEFAULT_PLANS: dict[str, Plan] = {
    "high": (
        ("kickoff", 7),
        ("check_in", 14),
        ("check_in", 21),
        ("check_in", 28),
        ("check_in", 42),
        ("check_in", 56),
        ("check_in", 90),
    ),
    "mid": (("kickoff", 14), ("check_in", 30), ("check_in", 60), ("check_in", 90)),
    "tech": (("welcome", 1), ("usage_check", 30)),
}


@dataclass(frozen=True)
class CadenceRules:
    """The touch model's rhythm: onboarding plans per tier, then QBRs and renewal reminders."""

    onboarding_days: int = 90
    plans: dict[str, Plan] = field(default_factory=lambda: dict(DEFAULT_PLANS))
    remind_before_days: int = 1  # a touch is announced this many days before it is due
    overdue_after_days: int = 3  # and chased once this many days after
    catch_up_days: int = 14  # reminders this much older than their day are not sent (after an outage)
    qbr_tiers: tuple[str, ...] = ("high",)
    qbr_every_days: int = 91  # the first QBR is this long after the handoff: keep it past onboarding
    qbr_remind_before_days: int = 14
    renewal_days: tuple[int, ...] = (90, 60, 30)
    timezone: str = "Asia/Tokyo"  # copied from schedule.timezone: days are the team's calendar days

    def __post_init__(self) -> None:
        for name in ("onboarding_days", "qbr_every_days"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("remind_before_days", "overdue_after_days", "catch_up_days", "qbr_remind_before_days"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must not be negative")
        if any(int(d) < 1 for d in self.renewal_days):
            raise ValueError("renewal_days must be whole numbers of days >= 1")
        for tier, steps in self.plans.items():
            if any(day > self.onboarding_days for _, day in steps):
                raise ValueError(f"plans.{tier}: every touch must be due within onboarding_days")
        if self.qbr_tiers and self.qbr_every_days <= self.onboarding_days:
            raise ValueError("qbr_every_days must be longer than onboarding_days (QBRs follow onboarding)")
        if unknown := set(self.qbr_tiers) - set(TIERS):
            raise ValueError(f"qbr_tiers: unknown tier(s) {', '.join(sorted(unknown))}")


def _plans(raw: Any, where: str) -> dict[str, Plan]:
    """``{high: [kickoff: 7, check_in: 14, ...]}`` -> plans; every tier needs one, each step a known
    touch kind due on a day within onboarding."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: plans must map each tier to a list like [kickoff: 7, check_in: 30]")
    plans: dict[str, Plan] = dict(DEFAULT_PLANS)
    for tier, steps in raw.items():
        if tier not in TIERS:
            raise ConfigError(f"{where}: plans.{tier}: unknown tier (use {', '.join(TIERS)})")
        out = []
        for i, step in enumerate(steps or [], 1):
            if not (isinstance(step, dict) and len(step) == 1):
                raise ConfigError(f"{where}: plans.{tier} step {i}: write it as `kind: day`, e.g. kickoff: 7")
            ((kind, day),) = step.items()
            if kind not in TOUCH_KINDS:
                raise ConfigError(
                    f"{where}: plans.{tier} step {i}: unknown touch {kind!r} (use {', '.join(TOUCH_KINDS)})"
                )
            if not isinstance(day, int) or day < 0:
                raise ConfigError(f"{where}: plans.{tier} step {i}: {kind} needs a whole number of days >= 0")
            out.append((str(kind), day))
        plans[tier] = tuple(sorted(out, key=lambda s: s[1]))
    return plans


def _section(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    """Build a rules dataclass from its YAML section; unknown keys are an error, not silently ignored."""
    data = dict(data or {})
    known = {f for f in cls.__dataclass_fields__}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    try:
        obj = cls(**data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return obj


@dataclass(frozen=True)
class Rules:
    touch_tiers: dict[str, TierThresholds]
    health: HealthRules = field(default_factory=HealthRules)
    alerts: AlertRules = field(default_factory=AlertRules)
    schedule: ScheduleRules = field(default_factory=ScheduleRules)
    pull: PullRules = field(default_factory=PullRules)
    digest: DigestRules = field(default_factory=DigestRules)
    cadence: CadenceRules = field(default_factory=CadenceRules)
    crm: CrmRules = field(default_factory=CrmRules)

    @classmethod
    def load(cls, path: Path | None) -> Rules:
        data: dict[str, Any] = {}
        if path is not None and path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tiers_raw = data.get("touch_tiers") or {
            "JPY": {"high": 6_000_000, "mid": 1_200_000},
            "USD": {"high": 50_000, "mid": 10_000},
            "EUR": {"high": 45_000, "mid": 9_000},
        }
        tiers: dict[str, TierThresholds] = {}
        for currency, t in tiers_raw.items():
            try:
                high, mid = Decimal(str(t["high"])), Decimal(str(t["mid"]))
            except (KeyError, TypeError, ArithmeticError) as exc:
                raise ConfigError(f"{path}: touch_tiers.{currency} needs numeric 'high' and 'mid'") from exc
            if mid > high:
                raise ConfigError(f"{path}: touch_tiers.{currency}: 'mid' must not exceed 'high'")
            tiers[currency.upper()] = TierThresholds(high=high, mid=mid)
        health = dict(data.get("health") or {})
        bands = health.pop("bands", None) or {}
        health.update({k: bands[k] for k in ("green", "yellow") if k in bands})
        metrics = health.get("usage_metrics")
        if isinstance(metrics, dict):  # {active_users: 2, logins: 1}: weights per metric
            health["usage_weights"] = {str(k): float(v) for k, v in metrics.items()}
            health["usage_metrics"] = tuple(metrics)
        elif metrics is not None:
            health["usage_metrics"] = tuple(metrics)
        if "weights" in health:
            health["weights"] = {**HealthRules().weights, **health["weights"]}
        if "metric_names" in health:
            health["metric_names"] = _metric_names(health["metric_names"] or {}, f"{path}: health")
        alerts = dict(data.get("alerts") or {})
        flat = {**(alerts.pop("churn", None) or {}), **(alerts.pop("upsell", None) or {}), **alerts}
        cadence = dict(data.get("cadence") or {})
        if "plans" in cadence:
            cadence["plans"] = _plans(cadence["plans"], f"{path}: cadence")
        for key in ("qbr_tiers", "renewal_days"):
            if key in cadence:
                cadence[key] = tuple(cadence[key] or ())
        if "timezone" in cadence:
            raise ConfigError(f"{path}: cadence.timezone: set schedule.timezone instead")
        schedule = _section(ScheduleRules, data.get("schedule"), f"{path}: schedule")
        cadence["timezone"] = schedule.timezone
        return cls(
            touch_tiers=tiers,
            health=_section(HealthRules, health, f"{path}: health"),
            alerts=_section(AlertRules, flat, f"{path}: alerts"),
            schedule=schedule,
            pull=_section(PullRules, data.get("pull"), f"{path}: pull"),
            digest=_section(DigestRules, data.get("digest"), f"{path}: digest"),
            cadence=_section(CadenceRules, cadence, f"{path}: cadence"),
            crm=CrmRules.load(data.get("crm"), f"{path}: crm"),
        )


def _database_url(raw: str, data_dir: Path) -> str:
    """The SQLAlchemy URL: SQLite in BATON_DATA_DIR by default. ``postgres://`` and ``postgresql://``
    (what hosting providers hand out) mean the psycopg 3 driver Baton ships, not SQLAlchemy's psycopg2."""
    if not raw:
        return f"sqlite:///{data_dir / 'baton.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            raw = "postgresql+psycopg://" + raw[len(prefix) :]
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(
            "DATABASE_URL is not a database URL: use sqlite:///path/baton.db or "
            "postgresql+psycopg://user:password@host:5432/db"
        ) from exc
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL: Baton runs on SQLite or PostgreSQL, not {url.get_backend_name()}")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise ConfigError("DATABASE_URL: write postgresql+psycopg://... (Baton ships the psycopg 3 driver)")
    return raw


def masked_url(url: str) -> str:
    """A database URL with its password replaced by ***, for logs and reprs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "***"  # not a URL we can take apart: show none of it


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # shown masked by __repr__
    data_dir: Path = ROOT  # BATON_DATA_DIR: the default SQLite file and the demo's live here
    port: int = 3000
    locale: str = "en"
    slack_api_url: str = "https://slack.com/api/"
    handoff_channel: str = ""
    alert_channel: str = ""
    digest_channel: str = ""
    cs_users: tuple[str, ...] = ()
    ingest_token: str = field(default="", repr=False)
    rules: Rules = field(default_factory=lambda: Rules.load(None))
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    # The CRMs (crm/): on when their credentials are set; the rules are `crm:` in baton.yml
    hubspot_access_token: str = field(default="", repr=False)
    hubspot_client_secret: str = field(default="", repr=False)  # verifies signed webhooks
    hubspot_api_url: str = "https://api.hubapi.com"
    salesforce_client_id: str = field(default="", repr=False)
    salesforce_client_secret: str = field(default="", repr=False)
    salesforce_login_url: str = "https://login.salesforce.com"
    # the server's public base URL, as HubSpot calls it (webhook signatures cover the full URL); empty:
    # https:// and the request's Host header
    public_url: str = ""

    @property
    def hubspot_on(self) -> bool:
        return bool(self.hubspot_access_token)

    @property
    def salesforce_on(self) -> bool:
        return bool(self.salesforce_client_id and self.salesforce_client_secret)

    def __repr__(self) -> str:
        shown = "".join(f", {f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings(database_url={masked_url(self.database_url)!r}{shown})"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        # An empty variable means unset: `docker run --env-file .env` passes .env.example's `DATABASE_URL=`
        # as "", which must not override the default and put the database outside the volume.
        env = {k: v.strip() for k, v in (os.environ if env is None else env).items() if v.strip()}
        locale = env.get("BATON_LOCALE", "en").lower()
        if locale not in SUPPORTED_LOCALES:
            raise ConfigError(f"BATON_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, not {locale!r}")
        try:
            port = int(env.get("PORT", "3000"))
        except ValueError as exc:
            raise ConfigError("PORT must be a number") from exc
        api_url = env.get("SLACK_API_URL", "https://slack.com/api/")
        if not api_url.endswith("/"):
            api_url += "/"
        rules_path = DEFAULT_RULES_FILE
        if "BATON_CONFIG" in env:  # named on purpose: a missing file is a mistake, not "use the defaults"
            rules_path = Path(env["BATON_CONFIG"])
            if not rules_path.is_file():
                raise ConfigError(
                    f"BATON_CONFIG={rules_path}: no such file (unset it to use {DEFAULT_RULES_FILE})"
                )
        data_dir = Path(env.get("BATON_DATA_DIR", str(ROOT)))
        return cls(
            database_url=_database_url(env.get("DATABASE_URL", ""), data_dir),
            data_dir=data_dir,
            port=port,
            locale=locale,
            slack_api_url=api_url,
            handoff_channel=env.get("BATON_HANDOFF_CHANNEL", ""),
            alert_channel=env.get("BATON_ALERT_CHANNEL", ""),
            digest_channel=env.get("BATON_DIGEST_CHANNEL", ""),
            cs_users=tuple(u.strip() for u in env.get("BATON_CS_USERS", "").split(",") if u.strip()),
            ingest_token=env.get("BATON_INGEST_TOKEN", ""),
            rules=Rules.load(rules_path),
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            hubspot_access_token=env.get("HUBSPOT_ACCESS_TOKEN", ""),
            hubspot_client_secret=env.get("HUBSPOT_CLIENT_SECRET", ""),
            hubspot_api_url=_base_url(env, "HUBSPOT_API_URL", "https://api.hubapi.com"),
            salesforce_client_id=env.get("SALESFORCE_CLIENT_ID", ""),
            salesforce_client_secret=env.get("SALESFORCE_CLIENT_SECRET", ""),
            salesforce_login_url=_base_url(env, "SALESFORCE_LOGIN_URL", "https://login.salesforce.com"),
            public_url=_base_url(env, "BATON_PUBLIC_URL", "https://baton.example.com")
            if env.get("BATON_PUBLIC_URL")
            else "",
        )


def _base_url(env: dict[str, str], name: str, default: str) -> str:
    """An http(s) base URL without its trailing slash; anything else is a configuration error."""
    url = env.get(name, default).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{name}={url!r}: an http(s) URL, e.g. {default}")
    return url
