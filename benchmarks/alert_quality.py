"""Alert quality of Baton's rules against the book's logistic regression, replayed week by week.

    .venv/bin/python benchmarks/alert_quality.py [--accounts 600] [--weeks 52] [--seeds 1 2 3]
        [--schemas seats flat] [--warmup 13] [--resolve-after 14] [--budget 2] [--gradient-boosting] [--json]
        [--ceiling-shares 0.25,0.5]
    .venv/bin/python benchmarks/alert_quality.py --schemas crm5 crm6 --accounts 300 --weeks 39 [...]

For each simulated book (every seed on every schema: simbook's ``seats`` and ``flat``, our own generator,
benchmarks/simbook.py; ChurnSim's ``crm5`` and ``crm6``, the public simulator of "Fighting Churn With
Data", benchmarks/churnsim.py) and each Monday, the way a
live deployment sees the data (/work/shared/docs/alert-quality.md): ingest the accounts export as of
that Monday and the seven days of signals before it (the ingest package into a fresh SQLite database),
resolve the alerts the team has had for ``--resolve-after`` days (nobody clicks in a replay; without
this an account could be alerted once in its life), then `scan` and `health_all` over data up to the
Sunday. Weeks after the warm-up are scored; the book runs 13 weeks past the last scored one so every
alert's 90-day outcome is known.

The peer is "Fighting Churn With Data"'s method on the same account-weeks: per-account 28-day metrics
(levels, per active user, per seat, per 10,000 JPY of MRR, tenure, MRR, seats), log-scaled and
standardized, a scikit-learn logistic regression refitted every 4 weeks only on earlier weeks whose
labels were known by then; as an alerter it flags its weekly top accounts (not alerted in the last 28
days: Baton's open-then-cooldown span) to the alert budget, churn and upsell each with a share.

Baton's model is model/backtest.py's walk-forward run on the replayed database after the replay: on
each scored Monday the churn and upsell models trained (every 4 weeks) on the earlier weeks whose
90-day outcome was known then, alerting the highest-ranked accounts down to twice the base rate
within the budget over 4 weeks, same budget and shares as the peer. --gradient-boosting adds a
HistGradientBoostingClassifier's AUC on the same training rows and weeks.

The upsell ceiling is what perfect knowledge buys: the simulator's own upgrade hazard of every account
on every scored week, ranked and alerted at each of ``--ceiling-shares`` of the budget, each account
resting 13 weeks after an alert as the product's do. It sees the present perfectly; only how the
hazard moves next and the draws themselves are hidden from it, so a method that sees only the data
should not expect to come near it.

Recall counts the churns (upgrades) whose whole 90-day window lies inside the scored weeks, so neither
method is charged for weeks it did not score. Figures are pooled over the books; each book's key
figures are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time as timer
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import churnsim  # noqa: E402
from benchmarks.simbook import START, Book, generate  # noqa: E402
from model.metrics import ROWS, alert_figures, ratio  # noqa: E402
from model.metrics import fmt as _fmt  # noqa: E402
from model.train import REST_WEEKS  # noqa: E402

CHURNSIM_CACHE = churnsim.HOME / "churnsim-books"  # ChurnSim books, simulated once per settings
TAIL_WEEKS = 13  # simulated past the last scored week: the 90-day outcomes of its alerts
COOLDOWN_DAYS = 28  # the peer's: Baton's alert stays open resolve_after days, then rests cooldown_days
REFIT_WEEKS = 4


def mondays(first: int, last: int) -> list[date]:
    return [START + timedelta(days=7 * w) for w in range(first, last + 1)]


def upgrades(book: Book, days: list[date]) -> dict[str, list[date]]:
    """MRR rises as the accounts history shows them: the first Monday export with a higher MRR."""
    idx = [book.index(d) - 1 for d in days]
    mrr = book.mrr[:, idx]
    out: dict[str, list[date]] = {}
    for a in range(len(book.ids)):
        for k in range(1, len(days)):
            t = idx[k]
            alive = book.begin[a] <= idx[k - 1] and (book.churn_day[a] < 0 or book.churn_day[a] > t)
            if alive and mrr[a, k] > mrr[a, k - 1] > 0:
                out.setdefault(book.ids[a], []).append(days[k])
    return out


# --- Baton, through its own code path ----------------------------------------------------------------


def replay_baton(
    book: Book,
    weeks: int,
    warmup: int,
    resolve_after: int,
    rules_path: Path | None,
    model_args: dict[str, Any] | None = None,
    *,
    train_days: int | None = None,
) -> dict:
    """The scan as a team runs it, week by week. With ``train_days`` the scan trains as the daily job
    does (when the stored model is that many days older than the data; backtest included, so the
    cold-start gate and the switch decide as in production) and its alerts are the product's: the
    column "Baton scan". Without it no model is ever stored: the rules decide, under the budget."""
    from dataclasses import replace

    from sqlalchemy import select

    from accounts.health import health_all
    from alerts import budget
    from alerts.rules import CHURN
    from alerts.service import resolve, scan
    from ingest import ingest_accounts, ingest_signals
    from model.service import needs_training, train_if_stale
    from settings import Rules
    from storage import Database
    from storage.models import Account

    rules = Rules.load(rules_path)
    if train_days is not None:
        rules = replace(rules, alerts=replace(rules.alerts, model_retrain_days=train_days))
    model_scores: list[tuple[str, str, float]] = []  # the stored churn model's, on the weeks it exists
    decided: list[tuple[str, str, str, str]] = []  # (monday, kind, model | rules, why)
    zone = ZoneInfo(rules.schedule.timezone)
    scored: list[tuple[str, str, int | None]] = []  # (account, monday, health score)
    alerts: list[tuple[str, str, str]] = []  # (account, monday, kind): only what a scan raised as new
    open_since: dict[int, date] = {}
    reasons: dict[str, int] = {}  # reason codes on the alerts raised, for reading the rules' mistakes
    seconds = {"ingest": 0.0, "scan": 0.0, "health": 0.0, "training": 0.0}
    with tempfile.TemporaryDirectory(prefix="baton-quality-") as tmp:
        db = Database(f"sqlite:///{tmp}/baton.db")
        db.upgrade()
        for monday in mondays(1, warmup + weeks):
            now = datetime.combine(monday, time(7), zone)
            clock = lambda now=now: now  # noqa: E731
            sunday = monday - timedelta(days=1)
            t0 = timer.perf_counter()
            with db.session() as s:
                rows = book.snapshot(monday)
                ingest_accounts(s, ((n, r, None) for n, r in enumerate(rows, 2)), as_of=monday, now=now)
            t = book.index(monday)
            signals = book.signals(max(0, t - 7), t - 1)
            with db.session() as s:
                ingest_signals(
                    s,
                    (
                        (n, {"account_id": a, "date": d, "metric": m, "value": v}, None)
                        for n, (a, d, m, v) in enumerate(signals, 2)
                    ),
                )
            t1 = timer.perf_counter()
            with db.session() as s:  # the team resolves what it has had for resolve_after days
                for alert_id, since in list(open_since.items()):
                    if (monday - since).days >= resolve_after:
                        resolve(s, alert_id=alert_id, actor="bench", clock=clock)
                        del open_since[alert_id]
            if train_days is not None:  # the daily job's order: train if stale, then scan
                tt = timer.perf_counter()
                with db.session() as s:
                    if needs_training(s, sunday, rules):
                        train_if_stale(s, sunday, rules, now=now)
                seconds["training"] += timer.perf_counter() - tt
                t1 += timer.perf_counter() - tt
            with db.session() as s:
                res = scan(s, as_of=sunday, rules=rules, clock=clock)
            t2 = timer.perf_counter()
            if train_days is not None:
                with db.session() as s:
                    ext = dict(s.execute(select(Account.id, Account.external_id)).all())
                    scored_now = budget.score_accounts(s, res.data.day, rules).get(CHURN, {})
                model_scores += [(ext[a], monday.isoformat(), v.probability) for a, v in scored_now.items()]
                why = res.decided_why
                decided += [(monday.isoformat(), k, by, why.get(k, "")) for k, by in res.decided_by.items()]
            with db.session() as s:
                health = [(h.external_id, h.score) for h in health_all(s, sunday, rules.health)]
            t3 = timer.perf_counter()
            seconds["ingest"] += t1 - t0
            seconds["scan"] += t2 - t1
            seconds["health"] += t3 - t2
            for r in res.raised:
                if r.change == "new":
                    open_since[r.alert_id] = monday  # type: ignore[index]
            if monday >= mondays(warmup + 1, warmup + 1)[0]:
                scored += [(ext, monday.isoformat(), sc) for ext, sc in health]
                alerts += [
                    (r.account, monday.isoformat(), "churn" if r.finding.kind == CHURN else "upsell")
                    for r in res.raised
                    if r.change == "new"
                ]
                for r in res.raised:
                    if r.change == "new":
                        for code in r.finding.codes:
                            reasons[code] = reasons.get(code, 0) + 1
        model = replay_model(db, warmup, weeks, rules, model_args or {}) if train_days is None else None
    first = mondays(warmup + 1, warmup + 1)[0].isoformat()
    return {
        "scored": scored,
        "alerts": alerts,
        "seconds": seconds,
        "reasons": reasons,
        "model": model,
        "scores": [r for r in model_scores if r[1] >= first],
        "decided": [r for r in decided if r[0] >= first],
    }


# --- Baton's model, through the product's code path ---------------------------------------------------


def replay_model(db: Any, warmup: int, weeks: int, rules: Any, args: dict[str, Any]) -> dict:
    """model/backtest.py's walk-forward on the replayed database: on each scored Monday, the model trained
    on the weeks before whose outcome was known then, alerting down to twice the base rate within the
    budget (churn and upsell shares as the peer's). Features, labels and floor are the product's."""
    from sqlalchemy import select

    from model.backtest import calibration, walk_forward
    from model.features import History
    from model.labels import churn_dates, upgrade_dates
    from storage.models import Account

    t0 = timer.perf_counter()
    last_sunday = mondays(warmup + weeks, warmup + weeks)[0] - timedelta(days=1)
    days = [m - timedelta(days=1) for m in mondays(warmup + 1, warmup + weeks)]
    with db.session() as s:
        ext = dict(s.execute(select(Account.id, Account.external_id)).all())
        history = History(
            s,
            last_sunday,
            warmup + weeks,
            activity=rules.health.activity_metric,
            names=rules.health.metric_names,
        )
        churns, ups = churn_dates(s), upgrade_dates(s)
        replay = walk_forward(
            history,
            days,
            churns,
            ups,
            budget=args.get("budget", 2.0),
            upsell_share=args.get("upsell_share", 0.25),
            gradient_boosting=args.get("gradient_boosting", False),
        )

    def monday(d: date) -> str:
        return (d + timedelta(days=1)).isoformat()

    return {
        "scores": [(ext[a], monday(d), p) for a, d, p in replay.scores],
        "gb_scores": [(ext[a], monday(d), p) for a, d, p in replay.gb_scores],
        "alerts": [(ext[a], monday(d), k) for a, d, k in replay.alerts],
        "fits": len(replay.fits),
        "calibration": calibration(replay.scores, churns),
        "seconds": {**replay.seconds, "wall": timer.perf_counter() - t0},
    }


# --- the peer: the book's logistic regression --------------------------------------------------------


def _features(book: Book, monday: date, accounts: np.ndarray) -> np.ndarray:
    """Per account: 28-day metrics up to the Sunday, log-scaled (standardized by the model's scaler)."""
    end = book.index(monday)  # exclusive
    lo = max(0, end - 28)
    sums = {m: np.nansum(book.values[m][accounts, lo:end], axis=1) for m in book.metrics}
    present = np.maximum((~np.isnan(book.values["active_users"][accounts, lo:end])).sum(axis=1), 1)
    seats = np.maximum(book.seats[accounts, end - 1], 1)
    mrr10k = np.maximum(book.mrr[accounts, end - 1] / 10_000, 0.01)
    users = np.maximum(sums["active_users"], 1)
    # the first metric is active users; per active user-day the next three, per MRR the two after logins
    # (simbook: logins and the two features; ChurnSim: its most frequent actions)
    f1, f2 = book.metrics[2], book.metrics[3]
    cols = [sums[m] / present for m in book.metrics]
    cols += [
        sums["active_users"] / present / seats,  # active users per seat
        sums[book.metrics[1]] / users,  # per active user-day
        sums[f1] / users,
        sums[f2] / users,
        sums[f1] / present / mrr10k,  # per 10,000 JPY of MRR
        sums[f2] / present / mrr10k,
        np.maximum(end - 1 - book.begin[accounts], 0),  # tenure, days
        seats,
    ]
    x = np.log1p(np.column_stack(cols))
    return np.column_stack([x, np.log(mrr10k)])


def _active(book: Book, monday: date) -> np.ndarray:
    t = book.index(monday) - 1
    return np.nonzero((book.begin <= t) & ((book.churn_day < 0) | (book.churn_day > t + 1)))[0]


def _labels(ids: list[str], monday: date, events: dict[str, list[date]], hi: int) -> np.ndarray:
    return np.array([any(1 <= (e - monday).days <= hi for e in events.get(i, ())) for i in ids])


class _Alerting:
    """The peer's alerter, also the ceiling's: each week its top accounts up to ``per_100`` alerts per
    100 scored accounts (the fraction carried to the next week), skipping an account alerted in the last
    ``rest_days`` (the peer's: COOLDOWN_DAYS)."""

    def __init__(self, per_100: float, rest_days: int = COOLDOWN_DAYS) -> None:
        self.per_100 = per_100
        self.rest_days = rest_days
        self.carry = 0.0
        self.last: dict[str, date] = {}

    def pick(self, monday: date, ids: list[str], scores: np.ndarray) -> list[str]:
        self.carry += self.per_100 * len(ids) / 100
        n = int(self.carry)
        self.carry -= n
        out: list[str] = []
        for j in np.argsort(-scores, kind="stable"):
            if len(out) >= n:
                break
            prev = self.last.get(ids[j])
            if prev is not None and (monday - prev).days < self.rest_days:
                continue
            self.last[ids[j]] = monday
            out.append(ids[j])
        return out


def replay_peer(
    book: Book,
    weeks: int,
    warmup: int,
    scored: set[tuple[str, str]],
    churns: dict[str, list[date]],
    ups: dict[str, list[date]],
    budget: float,
    upsell_share: float,
) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    days = mondays(5, warmup + weeks)  # from the first Monday with 28 days of history
    data = []
    for m in days:
        acc = _active(book, m)
        ids = [book.ids[a] for a in acc]
        data.append((m, ids, _features(book, m, acc), _labels(ids, m, churns, 30), _labels(ids, m, ups, 90)))
    targets = {"churn": (3, 30), "upsell": (4, 90)}
    models: dict[str, Any] = {}
    last_fit: date | None = None
    out_scores: list[tuple[str, str, float]] = []
    alerts: list[tuple[str, str, str]] = []
    alerters = {"churn": _Alerting(budget * (1 - upsell_share)), "upsell": _Alerting(budget * upsell_share)}
    fits = 0
    first_scored = START + timedelta(days=7 * (warmup + 1))
    for m, ids, x, _, _ in data:
        if m < first_scored:
            continue
        if last_fit is None or (m - last_fit).days >= 7 * REFIT_WEEKS:
            for kind, (col, horizon) in targets.items():
                known = [d for d in data if d[0] + timedelta(days=horizon + 1) <= m]  # labels known by m
                if not known:
                    continue
                xs = np.vstack([d[2] for d in known])
                ys = np.concatenate([d[col] for d in known])
                if ys.any() and not ys.all():
                    models[kind] = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(
                        xs, ys
                    )
                    fits += 1
            last_fit = m
        keep = [k for k, i in enumerate(ids) if (i, m.isoformat()) in scored]
        if not keep:
            continue
        for kind in ("churn", "upsell"):
            model = models.get(kind)
            if model is None:
                continue  # no history with both outcomes yet: nothing to alert on
            p = model.predict_proba(x[keep])[:, 1]
            if kind == "churn":
                out_scores += [(ids[k], m.isoformat(), float(v)) for k, v in zip(keep, p, strict=True)]
            picked = alerters[kind].pick(m, [ids[k] for k in keep], p)
            alerts += [(acc, m.isoformat(), kind) for acc in picked]
    return {"scores": out_scores, "alerts": alerts, "fits": fits}


# --- the upsell ceiling: perfect knowledge of the simulator's upgrade hazard -----------------------------


def replay_ceiling(
    book: Book, scored: set[tuple[str, str]], budget: float, shares: list[float]
) -> dict[str, Any]:
    """The best a ranking of the present can do at this budget: on each scored account-week the
    simulator's own upgrade hazard in effect at the Sunday (0 once an account has decided to leave),
    ranked, and alerted at each upsell share of the budget with the product's 13-week rest. Only how
    the hazard moves next and the draws themselves are unknown to it."""
    weeks: dict[str, list[int]] = {}
    index = {i: a for a, i in enumerate(book.ids)}
    for acc, monday in scored:
        weeks.setdefault(monday, []).append(index[acc])
    scores: list[tuple[str, str, float]] = []
    alerts: dict[str, list[tuple[str, str, str]]] = {str(sh): [] for sh in shares}
    # the product's rest (an alert speaks for 90 days): with the peer's 28 days the top accounts take
    # the budget week after week, and fewer upgrades are preceded by an alert
    alerters = {str(sh): _Alerting(budget * sh, 7 * REST_WEEKS) for sh in shares}
    assert book.upgrade_hazard is not None
    for monday in sorted(weeks):
        acc = np.array(sorted(weeks[monday]))
        h = book.upgrade_hazard[acc, book.index(date.fromisoformat(monday)) - 1]
        ids = [book.ids[a] for a in acc]
        scores += [(i, monday, float(v)) for i, v in zip(ids, h, strict=True)]
        for sh, alerter in alerters.items():
            alerts[sh] += [(i, monday, "upsell") for i in alerter.pick(date.fromisoformat(monday), ids, h)]
    return {"scores": scores, "alerts": alerts}


# --- one book, and the figures ---------------------------------------------------------------------------


def run_book(
    job: tuple[str, int, int, int, int, int, float, float, str | None, bool, int, list[float]],
) -> dict:
    (
        schema,
        seed,
        accounts,
        weeks,
        warmup,
        resolve_after,
        budget,
        upsell_share,
        rules,
        gb,
        train_days,
        shares,
    ) = job
    t0 = timer.perf_counter()
    if schema in churnsim.CONFIGS:
        book = churnsim.book(
            schema,
            seed,
            accounts,
            warmup + weeks + TAIL_WEEKS + 1,
            url=os.environ["BATON_CHURNSIM_PG"],
            cache=CHURNSIM_CACHE,
        )
    else:
        book = generate(schema, seed, accounts, warmup + weeks + TAIL_WEEKS + 1)
    gen = timer.perf_counter() - t0
    churns = {k: [v] for k, v in book.churns().items()}
    ups = upgrades(book, mondays(1, warmup + weeks + TAIL_WEEKS))
    model_args = {"budget": budget, "upsell_share": upsell_share, "gradient_boosting": gb}
    baton = replay_baton(book, weeks, warmup, resolve_after, Path(rules) if rules else None, model_args)
    t1 = timer.perf_counter()
    product = replay_baton(
        book, weeks, warmup, resolve_after, Path(rules) if rules else None, train_days=train_days
    )
    t_scan = timer.perf_counter() - t1
    t1 = timer.perf_counter()
    scored = {(a, m) for a, m, _ in baton["scored"]}
    peer = replay_peer(book, weeks, warmup, scored, churns, ups, budget, upsell_share)
    t2 = timer.perf_counter()
    has_hazard = book.upgrade_hazard is not None  # simbook's books; ChurnSim does not expose its own
    ceiling = replay_ceiling(book, scored, budget, shares) if shares and has_hazard else None
    return {
        "book": f"{schema}/{seed}",
        "accounts": len(book.ids),
        "signal_rows": int(
            sum((~np.isnan(v[:, : 7 * (warmup + weeks)])).sum() for v in book.values.values())
        ),
        "churns": {k: [d.isoformat() for d in v] for k, v in churns.items()},
        "upgrades": {k: [d.isoformat() for d in v] for k, v in ups.items()},
        "first": (START + timedelta(days=7 * (warmup + 1))).isoformat(),
        "last": (START + timedelta(days=7 * (warmup + weeks))).isoformat(),
        "baton": baton,
        "scan": product,
        "peer": peer,
        "ceiling": ceiling,
        "model": baton["model"],
        "seconds": {
            "generate": gen,
            "baton": t1 - t0 - gen - baton["model"]["seconds"]["wall"],
            "peer": t2 - t1,
            "model": baton["model"]["seconds"]["wall"],
            "model_training": baton["model"]["seconds"]["training"],
            "scan_replay": t_scan,
            "scan_training": product["seconds"]["training"],
            **baton["seconds"],
        },
    }


Key = tuple[str, str]  # (book, account): accounts pooled over books


def _pooled(books: list[dict]) -> tuple[dict, dict, list, list]:
    """What every method is judged against, pooled over the books: churns and upgrades per account,
    each book's scored window, and the scored account-weeks."""
    churns: dict[Key, list[date]] = {}
    ups: dict[Key, list[date]] = {}
    windows: list[tuple[date, date]] = []
    weeks: list[tuple[Key, date]] = []
    for b in books:
        key = b["book"]
        churns.update({(key, k): [date.fromisoformat(d) for d in v] for k, v in b["churns"].items()})
        ups.update({(key, k): [date.fromisoformat(d) for d in v] for k, v in b["upgrades"].items()})
        windows.append((date.fromisoformat(b["first"]), date.fromisoformat(b["last"])))
        weeks += [((key, a), date.fromisoformat(m)) for a, m, _ in b["baton"]["scored"]]
    return churns, ups, windows, weeks


def figures(books: list[dict], method: str) -> dict[str, Any]:
    """Every figure of issue 10's table for one method, pooled over the books (model/metrics.py's
    ``alert_figures``, as `app.py model backtest` prints them); accounts are keyed by book."""
    churns, ups, windows, weeks = _pooled(books)
    scores: list[tuple[Key, date, float]] = []
    alerts: list[tuple[Key, date, str]] = []
    for b in books:
        key = b["book"]
        if method == "baton":
            rows = [(a, m, -s) for a, m, s in b["baton"]["scored"] if s is not None]
        elif method == "gb":
            rows = b["model"]["gb_scores"]
        elif method == "scan":
            rows = b["scan"]["scores"]
        else:
            rows = b[method]["scores"]
        scores += [((key, a), date.fromisoformat(m), s) for a, m, s in rows]
        if method != "gb":
            alerts += [((key, a), date.fromisoformat(m), k) for a, m, k in b[method]["alerts"]]
    return alert_figures(scores, alerts, churns, ups, windows, weeks)


def ceiling_figures(books: list[dict], shares: list[float]) -> dict[str, Any] | None:
    """The upsell ceiling pooled over the books that have one (simbook's): the hazard's ranking (AUC
    and top-decile lift for an upgrade within 90 days) and, per share, the upsell figures of
    ``alert_figures``."""
    from model.metrics import ranking

    books = [b for b in books if b["ceiling"]]
    if not books:
        return None
    _, ups, windows, weeks = _pooled(books)
    scores = [((b["book"], a), date.fromisoformat(m), v) for b in books for a, m, v in b["ceiling"]["scores"]]
    out: dict[str, Any] = ranking(scores, ups, 90, "hazard")
    keys = ("upsell_alerts_per_100_week", "upsell_recall_90d", "upsell_precision_90d", "upsell_lift_90d")
    for sh in shares:
        alerts = [
            ((b["book"], a), date.fromisoformat(m), k)
            for b in books
            for a, m, k in b["ceiling"]["alerts"][str(sh)]
        ]
        fig = alert_figures([], alerts, {}, ups, windows, weeks)
        out[str(sh)] = {k: fig[k] for k in (*keys, "upgrades_in_window", "upsell_base_rate_90d")}
    return out


def print_ceiling(result: dict[str, Any]) -> None:
    c, scan, peer = result["ceiling"], result["scan"], result["peer"]
    if any(b["book"].split("/")[0] in churnsim.CONFIGS for b in result["books"]):
        print("\n(the ceiling is over simbook's books only; Baton scan and peer below are over all books)")
    budget = result["settings"]["budget"]
    print(
        f"\nupsell ceiling: an alerter that knows every account's true upgrade hazard (the simulator's; "
        f"AUC {_fmt('{:.3f}', c['hazard_auc_90d'])}, top-decile lift "
        f"{_fmt('{:.2f}', c['hazard_top_decile_lift_90d'])} for an upgrade within 90 days), "
        f"budget {budget:g}"
    )
    print(f"{'upsell alerter':<34} {'alerts/100/wk':>13} {'recall':>8} {'precision':>9} {'lift':>6}")
    rows = [(f"ceiling, share {float(sh):.0%}", c[sh]) for sh in c if not sh.startswith("hazard")]
    rows += [("Baton scan", scan), ("peer (LR)", peer)]
    for label, f in rows:
        print(
            f"{label:<34} {_fmt('{:.2f}', f['upsell_alerts_per_100_week']):>13} "
            f"{_fmt('{:.1%}', f['upsell_recall_90d']):>8} {_fmt('{:.1%}', f['upsell_precision_90d']):>9} "
            f"{_fmt('{:.2f}', f['upsell_lift_90d']):>6}"
        )


def _reasons(books: list[dict]) -> dict[str, int]:
    total: dict[str, int] = {}
    for b in books:
        for code, n in b["baton"]["reasons"].items():
            total[code] = total.get(code, 0) + n
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def print_table(result: dict[str, Any]) -> None:
    st, books, wall = result["settings"], result["books"], result["wall_seconds"]
    base, peer = result["baton"], result["peer"]
    model = result.get("model") or {k: None for k in base}
    product = result.get("scan") or {k: None for k in base}
    print(
        f"{len(books)} books ({', '.join(b['book'] for b in books)}), {st['accounts']} accounts each "
        f"at the start, {st['warmup']} warm-up + {st['weeks']} scored weeks; "
        f"{base['account_weeks']:,} account-weeks scored, {base['churns_in_window']} churns and "
        f"{base['upgrades_in_window']} upgrades with a full window"
    )
    print(
        f"{'measure':<46} {'Baton rules':>12} {'walk-forward':>12} {'Baton scan':>11} {'peer (LR)':>10} "
        f"{'scan/peer':>10}"
    )
    for label, key, fmt in ROWS:
        print(
            f"{label:<46} {_fmt(fmt, base[key]):>12} {_fmt(fmt, model.get(key)):>12} "
            f"{_fmt(fmt, product.get(key)):>11} {_fmt(fmt, peer[key]):>10} "
            f"{_fmt('{:.2f}', ratio(product.get(key), peer[key])):>10}"
        )
    for kind, n in (result.get("model_decided_weeks") or {}).items():
        why = (result.get("decided_why") or {}).get(kind, {})
        whys = ", ".join(f"{w} {c}" for w, c in sorted(why.items()))
        print(
            f"Baton scan: the model decided {kind} alerts in {n} of {len(books) * st['weeks']} book-weeks"
            + (f" (why, book-weeks: {whys})" if whys else "")
        )
    if result.get("gradient_boosting"):
        g = result["gradient_boosting"]
        print(
            f"gradient boosting (HistGradientBoostingClassifier) on the model's training rows and weeks: "
            f"AUC {_fmt('{:.3f}', g['auc_30d'])}, top-decile lift "
            f"{_fmt('{:.2f}', g['top_decile_lift_30d'])}"
        )
    print(
        f"\n{'per book (rules / walk-forward / scan / peer)':<18} {'AUC':>26} {'recall':>26} "
        f"{'lift':>26} {'alerts/100':>26}"
    )
    for b in books:
        cells = []
        for key, fmt in (
            ("auc_30d", "{:.2f}"),
            ("churn_recall_7_90d", "{:.0%}"),
            ("churn_lift_90d", "{:.2f}"),
            ("alerts_per_100_week", "{:.2f}"),
        ):
            mk, sk = b.get("model", {}).get(key), (b.get("scan") or {}).get(key)
            cells.append(
                f"{_fmt(fmt, b['baton'][key]):>6} /{_fmt(fmt, mk):>5} /{_fmt(fmt, sk):>5} "
                f"/{_fmt(fmt, b['peer'][key]):>5}"
            )
        print(f"{b['book']:<18} " + " ".join(cells))
    cal = [b["model_calibration"] for b in books if b.get("model_calibration")]
    if cal:
        print(
            "model calibration per book (predicted / observed churn within 90 days, expected calibration "
            "error): "
            + ", ".join(
                f"{b['book']} {c['predicted']:.1%} / {c['observed']:.1%}, ECE {c['ece']:.1%}"
                for b, c in zip(books, cal, strict=False)
            )
        )
    print(f"Baton's churn and upsell alerts by reason (an alert may have several): {result['reasons']}")
    if result.get("ceiling"):
        print_ceiling(result)
    secs = [b["seconds"] for b in books]

    def mean(k: str) -> float:
        return statistics.mean(s[k] for s in secs)

    print(
        f"wall {wall:.0f} s with {st['jobs']} jobs; per book: replay {mean('baton'):.0f} s (ingest "
        f"{mean('ingest'):.0f}, scan {mean('scan'):.0f}, health {mean('health'):.0f}), "
        f"peer {mean('peer'):.0f} s, model {mean('model'):.0f} s (training "
        f"{mean('model_training'):.0f} s), scan replay {mean('scan_replay'):.0f} s (training in the scan "
        f"{mean('scan_training'):.0f} s)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=600, help="accounts per book at the start")
    ap.add_argument("--weeks", type=int, default=52, help="scored weeks after the warm-up")
    ap.add_argument("--warmup", type=int, default=13, help="weeks of history before scoring starts")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--schemas",
        nargs="+",
        default=["seats", "flat"],
        choices=["seats", "flat", *churnsim.CONFIGS],
        help="simbook's seats / flat, or ChurnSim's crm5 / crm6 (benchmarks/churnsim.py: a venv and a "
        "PostgreSQL server of their own, made on first use)",
    )
    ap.add_argument("--resolve-after", type=int, default=14, help="days until the team resolves an alert")
    ap.add_argument("--budget", type=float, default=2.0, help="peer's alerts per 100 accounts per week")
    ap.add_argument("--upsell-share", type=float, default=0.25, help="the peer budget's share for upsell")
    ap.add_argument("--rules", default=str(ROOT / "baton.yml"), help="Baton's rules file (baton.yml)")
    ap.add_argument("--jobs", type=int, default=2, help="books replayed at once")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--save", help="also write the figures as JSON to this file")
    ap.add_argument(
        "--gradient-boosting",
        action="store_true",
        help="also HistGradientBoosting on the model's weeks (AUC)",
    )
    ap.add_argument(
        "--train-days",
        type=int,
        default=7 * REFIT_WEEKS,
        help="Baton scan: retrain when the stored model is this many days older than the data "
        "(alerts.model_retrain_days; default 28, the walk-forward's refit cadence)",
    )
    ap.add_argument(
        "--ceiling-shares",
        default="0.25,0.5",
        help="upsell ceiling: the budget shares to alert the true hazard at, comma-separated ('' for none)",
    )
    ap.add_argument("--show", help="print the table of a file written by --save, and stop")
    args = ap.parse_args()
    if args.show:
        print_table(json.loads(Path(args.show).read_text(encoding="utf-8")))
        return 0
    started = timer.perf_counter()
    shares = [float(x) for x in args.ceiling_shares.split(",") if x.strip()]
    jobs = [
        (
            schema,
            seed,
            args.accounts,
            args.weeks,
            args.warmup,
            args.resolve_after,
            args.budget,
            args.upsell_share,
            args.rules,
            args.gradient_boosting,
            args.train_days,
            shares,
        )
        for seed in args.seeds
        for schema in args.schemas
    ]
    with ExitStack() as stack:
        if any(schema in churnsim.CONFIGS for schema in args.schemas):
            churnsim.ensure_venv()
            os.environ["BATON_CHURNSIM_PG"] = stack.enter_context(churnsim.server())
        with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(jobs)))) as pool:
            books = list(pool.map(run_book, jobs))
    wall = timer.perf_counter() - started
    result: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "save", "show")},
        "wall_seconds": round(wall, 1),
        "baton": figures(books, "baton"),
        "peer": figures(books, "peer"),
        "model": figures(books, "model"),
        "scan": figures(books, "scan"),
        "model_decided_weeks": {
            kind: sum(1 for b in books for _, k, by, _ in b["scan"]["decided"] if k == kind and by == "model")
            for kind in ("churn_risk", "upsell")
        },
        # why the rules or the model decided, book-weeks per reason (alerts/budget.decide)
        "decided_why": {
            kind: dict(Counter(why for b in books for _, k, _, why in b["scan"]["decided"] if k == kind))
            for kind in ("churn_risk", "upsell")
        },
        "gradient_boosting": figures(books, "gb") if args.gradient_boosting else None,
        "ceiling": ceiling_figures(books, shares) if shares else None,
        "reasons": _reasons(books),
        "books": [
            {
                "book": b["book"],
                "accounts": b["accounts"],
                "signal_rows": b["signal_rows"],
                "seconds": {k: round(v, 1) for k, v in b["seconds"].items()},
                "peer_fits": b["peer"]["fits"],
                "model_fits": b["model"]["fits"],
                "model_calibration": b["model"]["calibration"],
                "model": figures([b], "model"),
                "scan": figures([b], "scan"),
                "baton": figures([b], "baton"),
                "peer": figures([b], "peer"),
                # week by week: (monday, kind, model | rules, why), to see where the switch went
                "decided": b["scan"]["decided"],
            }
            for b in books
        ],
    }
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
