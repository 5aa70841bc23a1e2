"""Simulated B2B SaaS books for the alert-quality benchmark: accounts, daily usage, churn and upgrades.

Why our own generator: the public ChurnSim (`fightchurn` 1.2) pins SQLAlchemy 1.4 (Baton runs on 2.x),
hydra, pandas, psycopg2 and some fifty other exact versions, needs a PostgreSQL server, and simulates
monthly subscriptions with events rather than seats, renewal dates and daily metrics.

What the books encode (the facts the benchmark tests alerting against):
  * churn is decided at renewal (annual contracts; monthly ones on the cheapest plan), with a
    probability that follows the LEVEL of use: active users per contracted seat and feature use per
    unit of price over the last 60 days, plus support friction, early tenure and noise. Some leavers
    wind down over their last weeks; most do not. A few churns are unpredictable (the customer is
    acquired, goes bankrupt).
  * usage is noisy without meaning: Japanese holidays (New Year, Golden Week, Obon) empty whole
    weeks, teams have slow weeks, and use drifts.
  * upgrades (an MRR rise) follow seat pressure: a growing team running at its seat limit buys
    seats (per-seat plans) or the next tier (flat plans).

Two product schemas: ``seats`` (a collaboration tool priced per seat, Starter monthly / Team /
Business annual; messages and files) and ``flat`` (an analytics platform on flat tiers with
included seats; reports and API calls). All amounts in JPY.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

START = date(2024, 1, 1)  # a Monday


@dataclass(frozen=True)
class Plan:
    name: str
    price: int  # per seat (per-seat schema) or flat per month
    seats: int  # included seats for flat plans; 0 for per-seat
    monthly: bool  # monthly contract (renews every month) rather than annual


SCHEMAS: dict[str, dict] = {
    "seats": {
        "plans": [
            Plan("Starter", 1_200, 0, True),
            Plan("Team", 2_400, 0, False),
            Plan("Business", 4_000, 0, False),
        ],
        "plan_weights": [0.35, 0.45, 0.20],
        "features": ("messages", "files_shared"),
        "intensity": (25.0, 2.0),  # per active user per day
        "seat_price": 2_400,  # what one seat costs: use per unit of price is use per this much MRR
    },
    "flat": {
        "plans": [
            Plan("Basic", 50_000, 10, False),
            Plan("Pro", 150_000, 30, False),
            Plan("Enterprise", 500_000, 100, False),
        ],
        "plan_weights": [0.45, 0.40, 0.15],
        "features": ("reports", "api_calls"),
        "intensity": (1.5, 60.0),
        "seat_price": 5_000,
    },
}
HOLIDAYS = [(12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3), (4, 29), (4, 30), (5, 1), (5, 2), (5, 3)]
HOLIDAYS += [(5, 4), (5, 5), (8, 13), (8, 14), (8, 15), (8, 16)]


@dataclass
class Book:
    schema: str
    seed: int
    start: date
    days: int
    ids: list[str]
    metrics: tuple[str, ...]
    values: dict[str, np.ndarray]  # metric -> (accounts, days), NaN where the account did not exist
    nps: dict[int, list[tuple[int, int]]]  # day -> [(account, answer)]
    begin: np.ndarray  # first day index of each account (contract start; may be negative: before START)
    churn_day: np.ndarray  # day index of churned_on, or -1
    plan: np.ndarray  # (accounts, days) plan index in effect at the end of each day
    seats: np.ndarray  # (accounts, days)
    mrr: np.ndarray  # (accounts, days)
    renewal: np.ndarray  # (accounts, days) day index of the next renewal seen at the end of each day
    plans: list[Plan] = field(default_factory=list)
    # (accounts, days) the true weekly upgrade hazard in effect at the end of each day (last Wednesday's
    # draw; 0 once the account leaves or has decided to): what a perfect upsell ranking would know
    upgrade_hazard: np.ndarray | None = None

    def day(self, i: int) -> date:
        return self.start + timedelta(days=int(i))

    def index(self, d: date) -> int:
        return (d - self.start).days

    def snapshot(self, monday: date) -> list[dict[str, str]]:
        """The accounts export as of ``monday``: every account that existed by the Sunday, as it stood
        then; churned ones stay listed with status churned and churned_on."""
        t = self.index(monday) - 1
        rows = []
        for a in np.nonzero(self.begin <= t)[0]:
            cd = int(self.churn_day[a])
            churned = 0 <= cd <= t + 1
            last = min(t, cd - 1) if churned else t  # a churned account is listed as it was on its last day
            last = max(last, 0)
            rows.append(
                {
                    "account_id": self.ids[a],
                    "name": f"Sim {self.schema} {self.seed} {self.ids[a]}",
                    "plan": self.plans[int(self.plan[a, last])].name,
                    "mrr": str(int(self.mrr[a, last])),
                    "seats": str(int(self.seats[a, last])),
                    "contract_start": self.day(self.begin[a]).isoformat(),
                    "renewal_date": self.day(self.renewal[a, last]).isoformat(),
                    "currency": "JPY",
                    "status": "churned" if churned else "active",
                    "churned_on": self.day(cd).isoformat() if churned else "",
                }
            )
        return rows

    def signals(self, first: int, last: int) -> list[tuple[str, str, str, float]]:
        """(account_id, date, metric, value) for day indexes first..last inclusive, as a daily export
        sends them: every metric every day the account is a customer (zeros included), NPS when answered."""
        out = []
        for t in range(first, last + 1):
            iso = self.day(t).isoformat()
            for m in self.metrics:
                col = self.values[m][:, t]
                for a in np.nonzero(~np.isnan(col))[0]:
                    out.append((self.ids[a], iso, m, float(col[a])))
            for a, v in self.nps.get(t, ()):
                out.append((self.ids[a], iso, "nps", float(v)))
        return out

    def churns(self) -> dict[str, date]:
        return {self.ids[a]: self.day(d) for a, d in enumerate(self.churn_day) if d >= 0}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def generate(schema: str, seed: int, accounts: int, weeks: int, start: date = START) -> Book:
    """A book of about ``accounts`` customers over ``weeks`` weeks from ``start``; new customers arrive
    at about the rate others leave, so the size stays roughly level."""
    spec = SCHEMAS[schema]
    plans: list[Plan] = spec["plans"]
    rng = np.random.default_rng(seed * 1009 + (0 if schema == "seats" else 1))
    days = weeks * 7
    # arrivals: the initial book plus roughly 18 %/year replacement
    n_new = rng.poisson(accounts * 0.18 * days / 365)
    cap = accounts + n_new
    begin = np.empty(cap, dtype=int)
    begin[:accounts] = -rng.integers(30, 1100, accounts)
    begin[accounts:] = np.sort(rng.integers(0, days, n_new))
    plan0 = rng.choice(len(plans), size=cap, p=spec["plan_weights"])
    team = np.exp(rng.normal(np.log(40), 0.9, cap)).clip(3, 600)  # people who could use the product
    growth = rng.normal(0.08, 0.15, cap)  # team growth per year
    # the account's own level: the share of its seats it really uses, a slowly drifting latent
    mu = rng.normal(0.6, 1.1, cap)
    z = mu + rng.normal(0, 0.5, cap)
    depth = np.exp(rng.normal(0, 0.6, cap))  # feature depth per active user (value per price)
    friction = np.exp(rng.normal(-0.2, 0.5, cap))  # support tickets per 20 users per week
    login_rate = rng.uniform(1.2, 2.8, cap)
    plan = plan0.copy()
    if schema == "seats":
        seats = np.ceil(team * rng.uniform(0.8, 1.3, cap)).astype(int).clip(3, None)
    else:
        seats = np.array([plans[p].seats for p in plan])
        need = team * 0.9
        for _ in range(2):  # teams far above their tier's seats usually bought the next one
            up = (need > seats * 1.4) & (plan < len(plans) - 1)
            plan[up] += 1
            seats = np.array([plans[p].seats for p in plan])
    term = np.array([30 if plans[p].monthly else 365 for p in plan])
    # next renewal after day 0 for existing accounts; a year (or month) after the start for new ones
    renewal = begin + term * np.maximum(1, np.ceil((0 - begin) / term)).astype(int)
    renewal = np.where(begin >= 0, begin + term, renewal)
    decided = np.zeros(cap, dtype=bool)  # leaving at the next renewal
    fade = np.zeros(cap, dtype=bool)
    churn_day = np.full(cap, -1)
    notice = np.where(term == 30, 10, 45)  # days before renewal that the decision is taken
    feats = spec["features"]
    metrics = ("active_users", "logins", *feats, "support_tickets")
    values = {m: np.full((cap, days), np.nan) for m in metrics}
    plan_d = np.zeros((cap, days), dtype=np.int16)
    seats_d = np.zeros((cap, days), dtype=np.int32)
    mrr_d = np.zeros((cap, days), dtype=np.int64)
    ren_d = np.zeros((cap, days), dtype=np.int32)
    hazard_d = np.zeros((cap, days))
    hazard = np.zeros(cap)
    nps: dict[int, list[tuple[int, int]]] = {}
    util_hist = np.full((cap, 60), np.nan)  # last 60 days of active/seats, for the decisions
    depth_hist = np.full((cap, 60), np.nan)  # feature use per unit of price, same window
    slow = np.zeros(cap, dtype=int)  # days left of a slow week
    prices = np.array([p.price for p in plans], dtype=float)
    week_scale = (5 * 0.95 + 2 * 0.12) / 7  # a week's average of the weekday/weekend factor

    def mrr_of() -> np.ndarray:
        if schema == "seats":
            return (seats * prices[plan]).astype(np.int64)
        extra = np.maximum(0, seats - np.array([plans[p].seats for p in plan]))
        return (prices[plan] + extra * 4_000).astype(np.int64)

    for t in range(days):
        today = start + timedelta(days=t)
        alive = (begin <= t) & ((churn_day < 0) | (churn_day > t))
        age = (t - begin) / 365
        # drift of the latent level: mean-reverting, with a slowly wandering mean
        mu += rng.normal(0, 0.035, cap)
        z += 0.02 * (mu - z) + rng.normal(0, 0.06, cap)
        p_use = _sigmoid(z)
        people = team * np.exp(growth * np.maximum(age, 0))
        eligible = np.minimum(seats, np.round(people)).astype(int)
        weekday = today.weekday()
        factor = np.full(cap, 0.95 if weekday < 5 else 0.12)
        if (today.month, today.day) in HOLIDAYS:
            factor[:] = 0.08
        starts_slow = (weekday == 0) & (rng.random(cap) < 1 / 20)
        slow = np.where(starts_slow, 7, np.maximum(0, slow - 1))
        factor = np.where(slow > 0, factor * 0.45, factor)
        wind = np.ones(cap)
        if fade.any():  # leavers who wind down: use falls toward a fifth by the renewal
            left = np.clip((renewal - t) / np.maximum(notice, 1), 0, 1)
            wind = np.where(fade, 0.2 + 0.8 * left, 1.0)
        active = rng.binomial(np.maximum(eligible, 0), np.clip(p_use * factor * wind, 0, 1))
        logins = rng.poisson(active * login_rate)
        f1 = rng.poisson(active * spec["intensity"][0] * depth * rng.lognormal(0, 0.3, cap))
        f2 = rng.poisson(active * spec["intensity"][1] * depth * rng.lognormal(0, 0.4, cap))
        tickets = rng.poisson(friction * np.maximum(eligible, 1) / 20 / 7 * (1.3 if weekday < 5 else 0.2))
        for m, v in zip(metrics, (active, logins, f1, f2, tickets), strict=True):
            values[m][alive, t] = v[alive]
        answered = alive & (rng.random(cap) < 1 / 120)
        nps[t] = [
            (int(a), int(np.clip(round(4 + 6 * p_use[a] + rng.normal(0, 2.2)), 0, 10)))
            for a in np.nonzero(answered)[0]
        ]
        util_hist[:, t % 60] = np.where(alive, active / np.maximum(seats, 1), np.nan)
        paid_seats = np.maximum(mrr_of() / spec["seat_price"], 1)  # the price, in seats' worth
        depth_hist[:, t % 60] = np.where(alive, f1 / spec["intensity"][0] / paid_seats, np.nan)

        # the decision to leave, taken `notice` days before the renewal, on the level of use
        deciding = alive & (renewal - t == notice) & ~decided
        if deciding.any():
            with warnings.catch_warnings(action="ignore"):  # an account's first day: no history yet
                util = np.nanmean(util_hist, axis=1) / week_scale  # share of seats used on a workday
                value = np.nanmean(depth_hist, axis=1) / week_scale  # feature use per seat's worth paid
            x = (
                -2.9
                - 3.2 * (np.nan_to_num(util, nan=0.0) - 0.5)
                - 0.9 * np.log(np.clip(np.nan_to_num(value, nan=0.01), 0.01, None) + 0.05)
                + 0.5 * np.log(friction)
                + 0.5 * (age < 1.2)
                + rng.normal(0, 0.8, cap)
            )
            x = np.where(term == 30, x - 1.9, x)  # monthly customers decide twelve times a year
            leaves = deciding & (rng.random(cap) < _sigmoid(x))
            decided |= leaves
            fade |= leaves & (rng.random(cap) < 0.35)
        renews = alive & (renewal == t)
        churn_day = np.where(renews & decided, t, churn_day)
        renewal = np.where(renews & ~decided, renewal + term, renewal)
        # the unpredictable: acquired, bankrupt, the champion left (about 2 %/year)
        sudden = alive & (churn_day < 0) & (rng.random(cap) < 0.02 / 365)
        churn_day = np.where(sudden, t + 1, churn_day)

        # upgrades on Wednesdays: seat pressure (use near the seat count and a team larger than it)
        if weekday == 2:
            with warnings.catch_warnings(action="ignore"):
                recent = np.nanmean(util_hist[:, [(t - k) % 60 for k in range(14)]], axis=1) / week_scale
            pressure = np.nan_to_num(recent, nan=0.0) * (people / np.maximum(seats, 1))
            h = 0.001 + 0.03 * _sigmoid(8 * (pressure - 1.0))
            can = alive & (churn_day < 0) & ~decided
            ups = can & (rng.random(cap) < h)
            hazard = np.where(can, h, 0.0)
            for a in np.nonzero(ups)[0]:
                if schema == "seats":
                    seats[a] = int(np.ceil(max(seats[a] * 1.15, people[a] * 1.1)))
                    if plan[a] == 0 and rng.random() < 0.3:
                        plan[a], term[a] = 1, 365
                elif plan[a] < len(plans) - 1 and rng.random() < 0.7:
                    plan[a] += 1
                    seats[a] = max(seats[a], plans[plan[a]].seats)
                else:
                    seats[a] = int(seats[a] + max(5, np.ceil(seats[a] * 0.2)))
            if ups.any():  # the hazard after the purchase: the same pressure on the new seats
                p_new = np.nan_to_num(recent, nan=0.0) * (people / np.maximum(seats, 1))
                hazard = np.where(ups, 0.001 + 0.03 * _sigmoid(8 * (p_new - 1.0)), hazard)
        plan_d[:, t], seats_d[:, t], mrr_d[:, t], ren_d[:, t] = plan, seats, mrr_of(), renewal
        stays = alive & ~decided & ((churn_day < 0) | (churn_day > t))
        hazard = np.where(stays, hazard, 0.0)
        hazard_d[:, t] = hazard
    ids = [f"{schema[0].upper()}{seed:02d}-{i:05d}" for i in range(cap)]
    return Book(
        schema,
        seed,
        start,
        days,
        ids,
        metrics,
        values,
        nps,
        begin,
        churn_day,
        plan_d,
        seats_d,
        mrr_d,
        ren_d,
        plans,
        upgrade_hazard=hazard_d,
    )
