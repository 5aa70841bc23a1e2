"""The alert budget: with a trained model, the scan alerts the accounts the model ranks highest, down to
a floor of twice the base rate, within the budget averaged over 4 weeks. The first slice's
backtest let 2.48 alerts per 100 accounts a week through a 2.0 budget; the cap is what keeps a team
reading the channel. Hard rules the team sets (inactivity, seats full, plan limit) still raise alerts,
and count in the same budget."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.rules import CHURN, SEVERITY_RANK, UPSELL, Finding
from clock import local_day
from model import store
from model.backtest import SWITCH
from model.decisions import announced, digest_part  # noqa: F401  (moved: the digest reads them too)
from model.features import History
from model.labels import CHURN_HORIZON
from model.train import REST_WEEKS, WINDOW_WEEKS, Scoring, allowance, drivers, weeks_back
from settings import Rules
from storage.models import Alert, ChurnModel, ModelDecision

HARD = {CHURN: {"inactive", "inactive_long"}, UPSELL: {"seats_full", "plan_limit"}}
_HARD_CODES = HARD[CHURN] | HARD[UPSELL]
MODEL_KIND = {CHURN: "churn", UPSELL: "upsell"}
REASON = {CHURN: "model_churn", UPSELL: "model_upsell"}
HORIZON_WEEKS = -(-CHURN_HORIZON // 7)  # 13: a week's 90-day outcome is known 13 weeks later


def band(p: float, floor: float | None = None) -> str:
    """The probability as a CSM reads it: a band, not a third decimal. High from 30 %; elevated from
    10 %, or from the model's floor (twice the base rate) where churn is rarer, so an alert never
    reads "low"."""
    if p >= 0.3:
        return "high"
    return "elevated" if p >= 0.1 or (floor is not None and p >= floor) else "low"


@dataclass
class Scored:
    """One model's reading of one account on the scored day."""

    probability: float
    threshold: float | None
    version: int
    reason: dict  # the card's reason: probability, band and the top drivers in numbers (en and ja)
    floor: float | None = None  # below it the model does not alert (model/train.LIFT_FLOOR)

    @property
    def limit(self) -> float | None:
        """The probability from which the model alerts, while the budget has room."""
        return self.floor if self.floor is not None else self.threshold


@dataclass(frozen=True)
class Decision:
    """Who decides ``kind``'s alerts, and why, in words the card and the digest show."""

    kind: str
    by: str  # model | rules
    why: str  # no_model | cold_start | no_backtest | rules_better | beats_rules
    params: dict[str, Any]
    model: ChurnModel | None = None


# threshold-free figures, so the rules' many alerts and the model's few are compared on the same footing
_BEATS = {kind: SWITCH[name][0] for kind, name in MODEL_KIND.items()}


def decide(row: ChurnModel | None, kind: str, rules: Rules) -> Decision:
    """Cold start: the rules decide until the stored model learnt from ``model_min_events`` churns
    (upgrades) in a history of ``model_min_weeks`` weeks and its backtest beat the rules on the same
    weeks."""
    a = rules.alerts
    if row is None:
        return Decision(kind, "rules", "no_model", {})
    t = row.training or {}
    # the history's span: the weeks trained on, and the 90 days after the last of them that showed
    # its outcome (the card reads "20 churns over 26 weeks" as the history's, as a team counts it)
    weeks = int(t.get("weeks") or 0)
    have = {"have_churns": int(t.get("events") or 0), "have_weeks": weeks + HORIZON_WEEKS if weeks else 0}
    need = {"churns": a.model_min_events, "weeks": a.model_min_weeks}
    if have["have_churns"] < need["churns"] or have["have_weeks"] < need["weeks"]:
        return Decision(kind, "rules", "cold_start", {**need, **have}, row)
    bt = row.backtest or {}
    # each figure on the weeks whose outcome at its horizon is known (model/backtest.SWITCH); a model
    # stored before the backtest kept them apart has its report's figures, on the 90-day weeks
    part = (bt.get("switch") or {}).get(MODEL_KIND[kind]) or bt
    model, by_rules = part.get("model") or {}, part.get("rules") or {}
    figures = {k: (model.get(k), by_rules.get(k)) for k in _BEATS[kind]}
    if any(m is None for m, _ in figures.values()):
        return Decision(kind, "rules", "no_backtest", {}, row)
    params = {
        "figures": {k: {"model": m, "rules": r} for k, (m, r) in figures.items()},
        "version": row.version,
    }
    if all(r is None or m > r for m, r in figures.values()):
        return Decision(kind, "model", "beats_rules", params, row)
    return Decision(kind, "rules", "rules_better", params, row)


def decisions(session: Session, rules: Rules, now: datetime) -> dict[str, Decision]:
    """Each kind's decision now; a change from the last one recorded (model to rules or back, or a new
    model version taking over) is recorded in the scan's transaction, for the digest to announce."""
    out: dict[str, Decision] = {}
    for kind, name in MODEL_KIND.items():
        d = out[kind] = decide(store.latest_row(session, name), kind, rules)
        last = session.scalars(
            select(ModelDecision).where(ModelDecision.kind == kind).order_by(ModelDecision.id.desc()).limit(1)
        ).first()
        model_id = d.model.id if d.by == "model" and d.model else None
        same_model = d.by == "rules" or (last is not None and last.model_id == model_id)
        if last is None and d.by == "rules":
            continue  # the rules decided from the start: nothing switched
        if last is None or last.decided_by != d.by or not same_model:
            session.add(
                ModelDecision(
                    kind=kind,
                    decided_by=d.by,
                    why=d.why,
                    model_id=model_id,
                    params=d.params,
                    decided_at=now,
                )
            )
    return out


def score_accounts(
    session: Session, day: date, rules: Rules, decided: dict[str, Decision] | None = None
) -> dict[str, dict[int, Scored]]:
    """Per model kind (churn_risk | upsell) the model decides, per Account.id: its probability from
    the stored model. Empty for a kind the rules decide (no model yet, cold start, or rules better)."""
    if decided is None:
        rows = {k: store.latest_row(session, m) for k, m in MODEL_KIND.items()}
        rows = {k: r for k, r in rows.items() if r is not None}
    else:
        rows = {k: d.model for k, d in decided.items() if d.by == "model" and d.model is not None}
    if not rows:
        return {}
    h = rules.health
    history = History(session, day, 1, activity=h.activity_metric, names=h.metric_names)
    out: dict[str, dict[int, Scored]] = {}
    for kind, row in rows.items():
        model = store.load(row)
        frame = history.frame(0, metrics=model.metrics, plans=model.plans)
        x = model.matrix(frame)
        p = model.proba(x) if len(x) else np.zeros(0)
        out[kind] = {
            int(a): Scored(
                float(p[i]),
                row.threshold,
                row.version,
                _reason(kind, model, x[i], frame.plans[i], p[i]),
                model.floor,
            )
            for i, a in enumerate(frame.account_ids)
        }
    return out


def _reason(kind: str, model: Scoring, x: np.ndarray, plan: str | None, p: float) -> dict:
    top = drivers(model, x, plan, top=3)
    return {
        "code": REASON[kind],
        "params": {
            "pct": round(float(p) * 100, 1),
            "risk": band(float(p), model.floor),
            "drivers": [{**d.as_json("en", plan), "text_ja": d.text("ja", plan)} for d in top],
        },
    }


def rate(accounts: int, rules: Rules, kind: str) -> float:
    """``kind``'s share of the budget for ``accounts`` accounts, in alerts a week."""
    a = rules.alerts
    return accounts * a.budget_per_100_accounts_week / 100 * a.budget_shares[MODEL_KIND[kind]] / 100


def room(session: Session, now: datetime, kind: str, accounts: int, rules: Rules) -> int:
    """New alerts of ``kind`` this scan may raise: the budget less the alerts raised in this week and
    the 3 before, whatever became of them (a resolved alert was still read). Weeks are counted in the
    team's days (``schedule.timezone``), so next Monday's scan gets a fresh week whatever hour this
    one ran at."""
    tz = rules.schedule.timezone
    today = local_day(now, tz)
    since = now - timedelta(days=7 * WINDOW_WEEKS + 1)
    stored = session.scalars(select(Alert.raised_at).where(Alert.kind == kind, Alert.raised_at > since))
    return allowance(
        rate(accounts, rules, kind), weeks_back(today, ((local_day(at, tz), 1) for at in stored))
    )


@dataclass(frozen=True)
class Rest:
    """What the team already read and resolved of one kind. A resolved alert spoke for the 90 days
    after it (model/train.REST_WEEKS); a hard reason it was resolved with is news no longer."""

    accounts: frozenset[int] = frozenset()  # raised in the last 13 weeks: the model does not alert them
    codes: dict[int, frozenset[str]] = field(default_factory=dict)  # hard reasons resolved in them
    told: dict[int, frozenset[str]] = field(default_factory=dict)  # hard reasons ever resolved

    def fresh(self, f: Finding, kind: str) -> set[str]:
        """``f``'s hard reasons the team was never told of for this account: they raise always."""
        return f.codes & HARD[kind] - self.told.get(f.account_id, frozenset())


def rested(session: Session, now: datetime, kind: str) -> Rest:
    """The team's resolved alerts of ``kind``: those raised in the last 13 weeks the model does not
    alert again inside the 90 days the alert spoke for; the hard reasons of those resolved in them do
    not raise again; a hard reason resolved before that raises again within the budget only. Open
    alerts are updated in place and rest nothing."""
    since = now - timedelta(weeks=REST_WEEKS)
    rows = session.execute(
        select(
            Alert.account_id,
            (Alert.raised_at > since).label("raised_in"),
            (Alert.resolved_at > since).label("resolved_in"),
            Alert.reasons,
        ).where(Alert.kind == kind, Alert.state == "resolved")
    ).all()
    codes: dict[int, set[str]] = {}
    told: dict[int, set[str]] = {}
    for row in rows:
        hard = {r.get("code") for r in row.reasons or [] if isinstance(r, dict)} & _HARD_CODES
        if hard:
            told.setdefault(row.account_id, set()).update(hard)
            if row.resolved_in:
                codes.setdefault(row.account_id, set()).update(hard)
    return Rest(
        frozenset(r.account_id for r in rows if r.raised_in),
        {a: frozenset(c) for a, c in codes.items()},
        {a: frozenset(c) for a, c in told.items()},
    )


def rest_hard(findings: Iterable[Finding], rest: Rest, open_ids: set[int]) -> tuple[list[Finding], int]:
    """The findings less the hard-rule reasons the team resolved for the account in the last 13
    weeks, and how many accounts that rests (they raise no hard-rule alert this week). An account full
    on seats for months was alerted again each time its cooldown ran out (1,537 seats-full alerts on
    ChurnSim's books, 4.28 a week per 100 for a budget of 2); a resolved reason now rests, and a
    different one (inactive becoming inactive_long) still raises. An open alert is updated with
    everything: that takes no slot. A finding left with no reason is dropped."""
    out, resting = [], 0
    for f in findings:
        codes = rest.codes.get(f.account_id, frozenset())
        if f.account_id in open_ids or not f.codes & codes:
            out.append(f)
            continue
        keep = [r for r in f.reasons if r["code"] not in codes]
        resting += not {r["code"] for r in keep} & _HARD_CODES
        if keep:
            out.append(replace(f, reasons=keep))
    return out, resting


def select_findings(
    findings: Iterable[Finding],
    scored: dict[int, Scored],
    kind: str,
    *,
    left: int,
    blocked: set[int],
    open_ids: set[int],
    rest: Rest | None = None,
) -> tuple[list[Finding], int]:
    """The week's findings of ``kind`` under the budget: hard-rule findings the team was never told of
    always (counted first), then the model's highest-ranked accounts at or above its floor (twice the
    base rate) while ``left`` (the scan's ``room``) allows, then hard reasons it resolved before
    (``rest``: an account full on seats for a year) while room is left. An account with an open
    alert keeps being updated without a new slot; one in cooldown or snoozed (``blocked``) takes none;
    one alerted and resolved in the last 13 weeks gets no model finding. Returns the findings and how
    many accounts at or above the stored threshold (the strong ones, not every account over the
    floor), or repeating a hard reason, the budget held back."""
    rest = rest or Rest()
    hard, repeats = _hard(findings, kind, rest)
    left -= sum(1 for a in hard if a not in open_ids and a not in blocked)
    out = dict(hard)
    cut = 0
    ranked = sorted(scored.items(), key=lambda kv: -kv[1].probability)
    for account_id, s in ranked:
        if s.limit is None or s.probability < s.limit:
            break
        if account_id in rest.accounts and account_id not in open_ids:
            continue
        fresh = out.get(account_id)  # a hard finding already holds its slot; a repeat does not
        if fresh is None and account_id not in open_ids and account_id not in blocked:
            if left <= 0:
                cut += s.threshold is None or s.probability >= s.threshold
                continue
            left -= 1
        prior = fresh or repeats.pop(account_id, None)
        high = s.threshold is not None and s.probability >= 2 * s.threshold
        severity = "high" if high or prior is not None else "medium"
        reasons = [s.reason, *(prior.reasons if prior else [])]
        out[account_id] = Finding(account_id, kind, severity, prior.score if prior else None, reasons)
    for account_id, f in repeats.items():
        if account_id not in open_ids and account_id not in blocked:
            if left <= 0:
                cut += 1
                continue
            left -= 1
        out[account_id] = f
    return list(out.values()), cut


def _hard(
    findings: Iterable[Finding], kind: str, rest: Rest
) -> tuple[dict[int, Finding], dict[int, Finding]]:
    """Each account's hard-rule reasons as a finding: those with a reason the team was never told of,
    and those repeating what it resolved before (worst first)."""
    hard: dict[int, Finding] = {}
    repeats: dict[int, Finding] = {}
    for f in sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.account_id)):
        keep = [r for r in f.reasons if r["code"] in HARD[kind]]
        if keep:
            (hard if rest.fresh(f, kind) else repeats)[f.account_id] = replace(f, reasons=keep)
    return hard, repeats


def select_by_rules(
    findings: Iterable[Finding],
    kind: str,
    *,
    left: int,
    blocked: set[int],
    open_ids: set[int],
    rest: Rest | None = None,
) -> tuple[list[Finding], int]:
    """The week's findings of ``kind`` while the rules decide (no model yet, cold start, or rules better),
    under the same budget: a new team is not read twenty alerts per 100 accounts a week until a model
    is ready. Hard-rule findings the team was never told of always; the others by severity, then by
    health score (lowest first for churn risk, highest first for upsell), while the cap allows: a hard
    reason resolved before (``rest``) among them. Open alerts keep being updated."""
    rest = rest or Rest()
    findings = list(findings)
    hard = {f.account_id for f in findings if rest.fresh(f, kind)}
    left -= sum(1 for a in hard if a not in open_ids and a not in blocked)
    sign = 1 if kind == CHURN else -1

    def rank(f: Finding) -> tuple[int, bool, float]:
        return (-SEVERITY_RANK[f.severity], f.score is None, sign * (f.score or 0))

    out, cut = [], 0
    for f in sorted(findings, key=rank):
        if f.account_id not in hard and f.account_id not in open_ids and f.account_id not in blocked:
            if left <= 0:
                cut += 1
                continue
            left -= 1
        out.append(f)
    return out, cut
