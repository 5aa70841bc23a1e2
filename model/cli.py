"""`app.py model train | backtest | explain`: the terminal side of model/ (a failure is one line)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from clock import Clock
from model import store
from model.backtest import BOOSTING, DEFAULT_BUDGET, REGRESSION, Backtest, run
from model.metrics import ROWS, UPSELL_ROWS
from model.metrics import fmt as _fmt
from model.service import CHOICES, explain, train_models
from model.train import NotEnoughHistory
from settings import Rules
from storage import Database

DEFAULT_PNG = "baton-backtest.png"  # in the working directory unless --png says where


def print_backtest(bt: Backtest) -> None:
    m, r = bt.model, bt.rules
    print(
        f"Backtest of {bt.first.isoformat()} to {bt.last.isoformat()} (each Monday's scan, data up to "
        f"the Sunday; data through {bt.anchor.isoformat()}): {m['account_weeks']:,} account-weeks, "
        f"{m['churns_in_window']} churns and {m['upgrades_in_window']} upgrades with a full 90-day window; "
        f"budget {bt.budget:g} alerts per 100 accounts per week"
    )
    print(f"{'measure':<46} {'model':>8} {'rules':>8}")
    for label, key, fmt in ROWS + UPSELL_ROWS:
        print(f"{label:<46} {_fmt(fmt, m.get(key)):>8} {_fmt(fmt, r.get(key)):>8}")
    sw = bt.switch.get("churn")
    if sw:  # what the scan's model-or-rules switch compares (model/backtest.SWITCH)
        auc, lift = (
            " vs ".join(_fmt(f, sw[side].get(key)) for side in ("model", "rules"))
            for key, f in (("auc_30d", "{:.3f}"), ("top_decile_lift_30d", "{:.2f}"))
        )
        print(
            f"the scan's switch compares churn within 30 days on {sw['first']} to {sw['last']} (every week "
            f"whose 30-day outcome is known), model vs rules: AUC {auc}, top-decile lift {lift}; the model "
            "decides churn alerts when it beats the rules on both"
        )
    c = bt.calibration
    if c:
        fifths = ", ".join(f"{b['predicted']:.1%}/{b['observed']:.1%}" for b in c["by_fifth"])
        print(
            f"calibration: predicted {c['predicted']:.1%} vs observed {c['observed']:.1%} churn within "
            f"90 days; by fifth of risk (predicted/observed): {fifths}; expected calibration error "
            f"{c['ece']:.1%}, Brier {c['brier']:.3f}"
        )
    if bt.gradient_boosting:
        g, lr = bt.gradient_boosting, bt.regression or {}
        verdict = {
            BOOSTING: "it beats the regression on both, so it is the churn model (the model column is its)",
            REGRESSION: "the regression stays (gradient boosting must beat it on both)",
        }[bt.algorithm]
        auc, lift = "auc_30d", "top_decile_lift_30d"
        print(
            f"gradient boosting on the same weeks: AUC {_fmt('{:.3f}', g[auc])} vs "
            f"{_fmt('{:.3f}', lr.get(auc))}, top-decile lift {_fmt('{:.2f}', g[lift])} "
            f"vs {_fmt('{:.2f}', lr.get(lift))} for the regression: {verdict}"
        )
        if bt.upsell_choice.get("why") not in ("not_compared", "not_replayed"):  # boosted upsell replayed
            verdict = {
                BOOSTING: "it beats the regression on both, so it is the upsell model",
                REGRESSION: "the regression stays the upsell model (gradient boosting must beat it on both)",
            }[bt.upsell_algorithm]
            auc, lift = "upsell_auc_90d", "upsell_top_decile_lift_90d"
            print(
                f"gradient boosting for upsell on the same weeks (upgrades within 90 days): AUC "
                f"{_fmt('{:.3f}', g.get(auc))} vs {_fmt('{:.3f}', lr.get(auc))}, top-decile lift "
                f"{_fmt('{:.2f}', g.get(lift))} vs {_fmt('{:.2f}', lr.get(lift))} for the regression: "
                f"{verdict}"
            )
    for kind, why in bt.replay.skipped.items():  # the first weeks, before enough outcomes were known
        print(f"weeks before the first {kind} model are not scored: {why}")


def run_model(
    db: Database,
    rules: Rules,
    action: str,
    *,
    as_of: date,
    clock: Clock,
    account: str | None = None,
    start: date | None = None,
    budget: float | None = None,
    as_json: bool = False,
    gradient_boosting: bool = False,
    locale: str = "en",
    png: str | None = None,
) -> int:
    budget = DEFAULT_BUDGET if budget is None else budget
    try:
        if action == "train":
            return _train(db, rules, as_of=as_of, clock=clock, budget=budget, as_json=as_json)
        if action == "backtest":
            return _backtest(
                db,
                rules,
                as_of=as_of,
                start=start,
                budget=budget,
                as_json=as_json,
                gradient_boosting=gradient_boosting,
                png=png,
            )
        if action == "explain":
            return _explain(db, rules, account, as_of=as_of, as_json=as_json, locale=locale)
    except NotEnoughHistory as exc:
        print(f"model {action}: {exc}", file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"model {action}: {exc.args[0]}", file=sys.stderr)
        return 1
    raise AssertionError(action)


def _train(db: Database, rules: Rules, *, as_of: date, clock: Clock, budget: float, as_json: bool) -> int:
    with db.session() as session:
        algorithms = rules.alerts.model_algorithms
        done = train_models(session, as_of, rules.health, now=clock(), budget=budget, algorithms=algorithms)
        out: list[dict[str, Any]] = [
            {
                "kind": r.kind,
                "version": r.version,
                "algorithm": r.algorithm,
                # why the backtest chose it (model/backtest.choose), each kind's own choice
                "algorithm_why": (r.backtest.get(CHOICES.get(r.kind, "")) or {}).get("why"),
                "data_through": r.data_through.isoformat(),
                "threshold": r.threshold,
                "alerts_from": store.load(r).floor,  # the scan alerts down to it while the budget allows
                "training": r.training,
                "backtest_model": r.backtest.get("model"),
            }
            for r in done.rows
        ]
    if as_json:
        print(json.dumps({"models": out, "skipped": done.skipped}, indent=2, default=str))
        return 0
    print("\n".join(train_lines(out, done.skipped)))
    print(f"took {done.seconds:.1f} s")
    return 0


def train_lines(models: list[dict[str, Any]], skipped: dict[str, str]) -> list[str]:
    """`model train`'s lines, from what `model train --json` prints under "models" and "skipped"."""
    lines = []
    for o in models:
        t = o["training"]
        lines.append(
            f"{o['kind']} model v{o['version']} ({o['algorithm'].replace('_', ' ')}"
            f"{', its backtest beat the regression' if o['algorithm'] == BOOSTING else ''}) "
            f"trained on {t['rows']:,} account-weeks over "
            f"{t['weeks']} weeks ({t['events']} accounts with the outcome), data through "
            f"{o['data_through']}, "
            f"alerts from {_fmt('{:.1%}', o['alerts_from'])} while the budget has room "
            f"(threshold for the budget {_fmt('{:.1%}', o['threshold'])})"
        )
    return lines + [f"no {kind} model: {why}" for kind, why in skipped.items()]


def _backtest(
    db: Database,
    rules: Rules,
    *,
    as_of: date,
    start: date | None,
    budget: float,
    as_json: bool,
    gradient_boosting: bool,
    png: str | None,
) -> int:
    """The replay, then its chart: a chart that cannot be written fails the command (it is the output)."""
    with db.session() as session:
        # as training does: gradient boosting replayed beside the regression when a candidate
        gb = gradient_boosting or BOOSTING in rules.alerts.model_algorithms
        bt = run(session, as_of, rules.health, start=start, budget=budget, gradient_boosting=gb)
    path = Path(png or DEFAULT_PNG)
    try:
        from model.chart import png as render

        path.write_bytes(render(bt))
    except OSError as exc:
        print(
            f"model backtest: cannot write the chart to {path}: {exc.strerror}; pass --png PATH",
            file=sys.stderr,
        )
        return 1
    if as_json:
        print(json.dumps({**bt.as_json(), "png": str(path)}, indent=2, default=str))
    else:
        print_backtest(bt)
        print(f"chart (churns caught against alerts per week, rules and model): {path}")
    return 0


def _explain(
    db: Database, rules: Rules, account: str | None, *, as_of: date, as_json: bool, locale: str
) -> int:
    if not account:
        print("model explain needs an account: python app.py model explain ACCOUNT", file=sys.stderr)
        return 2
    with db.session() as session:
        exps = explain(session, account, as_of, rules.health)
        data = [e.as_json(locale) for e in exps]
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for e in data:
        floor = e["alerts_from"]
        flag = "" if floor is None else (" (alerted at this level)" if e["probability"] >= floor else "")
        print(
            f"{e['name']} ({e['account_id']}): {e['kind']} probability {e['probability']:.1%}{flag}, "
            f"model v{e['model_version']}, data through {e['data_through']}"
        )
        for d in e["drivers"]:
            print(f"  {d['contribution']:+.3f}  {d['text']}")
        print(f"  {e['intercept']:+.3f}  baseline (intercept); logit {e['logit']:+.3f}")
    return 0
