"""Books from ChurnSim, "Fighting Churn With Data"'s public simulator (the ``fightchurn`` package), laid
out as benchmarks/simbook.py's ``Book`` so benchmarks/alert_quality.py replays them the same way.

Why a venv of its own: fightchurn 1.2.0 pins SQLAlchemy 1.4 (Baton runs on 2.x), psycopg2, hydra,
numba, xgboost and some fifty other versions. It is made on first use, from PyPI, in the XDG cache
(``~/.cache/baton/churnsim-venv``, outside the repository; nothing is downloaded at Baton's run time),
and ChurnSim runs there as a subprocess, writing its tables (account, subscription, event, event_type)
into a PostgreSQL database of its own. This module reads them back with Baton's own psycopg.

What a ChurnSim book is (configs ``crm5`` and ``crm6``: a B2B CRM on 15 plans of 5-100 user seats,
billed monthly, every 6 or 12 months, with add-ons): each customer has a number of users and per-user
rates of 26 actions (search, add_lead, meeting, ...); each month its utility, a weighted sum of the
month's action counts minus price, decides by a logistic draw whether it means to churn (at the
renewal for longer terms), upgrade (to the plan whose limit it is near, or to a longer term, which
costs less a month and so is no upgrade to Baton, whose upgrades are MRR rises) or downgrade; 1.5-2 %
a month churn for no reason. So churn follows the level of use per unit of price, as in simbook, but
through another generator with another shape: its levels, its noise, its seasons (a weekday/weekend
swing only), its upgrades (at renewal, from utility, not from seat pressure).

Mapped to what a team exports to Baton:
  * the accounts file: plan (the plan subscription's product), seats (its ``quantity`` of users), MRR
    (the sum of the account's subscriptions that day, add-ons included, discount applied as ChurnSim
    prices them), contract start (the first subscription), renewal date (the plan subscription's end),
    and churned_on (the end of the last subscription, when it ended before the simulation did);
  * daily signals: ``active_users`` (distinct users with an event that day) and the six (``metrics``)
    most frequent actions over the book (a team sends the events it logs most; choosing them by ChurnSim's
    utility weights would tell Baton the answer), each as that day's count, zeros included.
ChurnSim starts every initial customer in its first month; the simulation starts a year before the
book does so that the book opens on customers of every age, as a real one would.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from benchmarks.simbook import START, Book, Plan

# outside the repository, so ruff, pytest and the Docker build never walk it
HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "baton"
VENV = HOME / "churnsim-venv"
PACKAGE = "fightchurn==1.2.0"
CONFIGS = ("crm5", "crm6")
MATURE_DAYS = 364  # simulated before the book's first day
# ChurnSim's initial customers per account asked for: 300 asked gave about 230 at the book's start a
# year on, which ChurnSim's arrivals (one more each month than the month before) double by its end
INIT_SHARE = 0.5


def ensure_venv() -> Path:
    """The interpreter of a venv with ChurnSim in it, made (about a minute, once) when missing."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == PACKAGE:
        return python
    print(f"making {VENV} with {PACKAGE} (once; about a minute)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", PACKAGE], check=True)
    stamp.write_text(PACKAGE)
    return python


@contextmanager
def server() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server to simulate into: BATON_CHURNSIM_PG when set (a server URL, no
    database), else a throwaway one from Debian's packages in a temporary directory, as scripts/test
    starts for the tests."""
    given = os.environ.get("BATON_CHURNSIM_PG")
    if given:
        yield given.rstrip("/")
        return
    bins = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in p.parent.name.split(".")]
    )
    if not bins:
        raise SystemExit(
            "PostgreSQL is missing: run scripts/test once (it installs it), or set BATON_CHURNSIM_PG"
        )
    bin_ = bins[-1]
    tmp = Path(tempfile.mkdtemp(prefix="baton-churnsim-pg-"))
    as_pg: list[str] = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    if os.getuid() == 0:
        shutil.chown(tmp, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp / "data"
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    subprocess.run([*as_pg, str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], **quiet)
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_pg, str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w", "-o", opts, "start"],
        **quiet,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_pg, str(bin_ / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], stdout=subprocess.DEVNULL
        )
        shutil.rmtree(tmp, ignore_errors=True)


def book(
    config: str,
    seed: int,
    accounts: int,
    weeks: int,
    *,
    url: str,
    metrics: int = 6,
    cache: Path | None = None,
) -> Book:
    """A ChurnSim ``config`` book of about ``accounts`` customers over ``weeks`` weeks from START,
    simulated once per (config, seed, accounts, weeks, metrics) and kept in ``cache``."""
    key = f"{config}-s{seed}-a{accounts}-w{weeks}-m{metrics}.pickle"
    if cache is not None and (cache / key).exists():
        with (cache / key).open("rb") as f:
            return pickle.load(f)  # our own cache, written below
    days = 7 * weeks
    db = f"churnsim_{config}_{seed}_{os.getpid()}"
    _createdb(url, db)
    try:
        _simulate(config, seed, accounts, days, f"{url}/{db}")
        out = _load(f"{url}/{db}", config, seed, days, metrics)
    finally:
        _dropdb(url, db)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        with (cache / key).open("wb") as f:
            pickle.dump(out, f)
    return out


def _admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(f"{url}/postgres", autocommit=True)


def _createdb(url: str, name: str) -> None:
    with _admin(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
        # ChurnSim's DDL gives every table to the role postgres
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'postgres'").fetchone():
            conn.execute("CREATE ROLE postgres")


def _dropdb(url: str, name: str) -> None:
    with _admin(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _simulate(config: str, seed: int, accounts: int, days: int, db_url: str) -> None:
    from urllib.parse import urlsplit

    python = ensure_venv()
    u = urlsplit(db_url)
    env = {
        **os.environ,
        "CHURN_DB": u.path.lstrip("/"),
        "CHURN_DB_USER": u.username or "postgres",
        "CHURN_DB_PASS": u.password or "x",
        "CHURN_DB_HOST": u.hostname or "127.0.0.1",
        "PGPORT": str(u.port or 5432),
    }
    first = START - timedelta(days=MATURE_DAYS)
    last = START + timedelta(days=days + 31)  # a month past the book: every churn in it is decided
    with tempfile.TemporaryDirectory(prefix="baton-churnsim-") as out:
        # ChurnSim keeps its customer-id counter and its COPY files in the temporary directory: one of
        # its own, or two simulations at once share the counter and the first to finish deletes it
        env["CHURN_OUT_DIR"] = env["TMPDIR"] = out
        args = [
            str(python),
            "-m",
            "fightchurn.churnsim.churnsim",
            "--config-name",
            config,
            f"init_customers={max(10, round(accounts * INIT_SHARE))}",
            f"start_date={first.isoformat()}",
            f"end_date={last.isoformat()}",
            f"random_seed={seed}",
            "force=True",
        ]
        done = subprocess.run(args, env=env, cwd=out, capture_output=True, text=True)
    if done.returncode != 0:
        log = HOME / f"churnsim-{config}-{seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
        lines = [x for x in done.stderr.splitlines() if x.strip() and "HYDRA_FULL_ERROR" not in x]
        raise SystemExit(
            f"ChurnSim {config} seed {seed} failed: {lines[-1] if lines else '?'} (all of it: {log})"
        )


def _load(db_url: str, config: str, seed: int, days: int, n_metrics: int) -> Book:
    """The simulation's tables as a Book over ``days`` days from START (see the module's docstring)."""
    import psycopg

    s = config  # ChurnSim's schema is its config's name
    with psycopg.connect(db_url) as conn:
        subs = conn.execute(
            f"SELECT account_id, product, start_date, end_date, mrr, quantity, units, bill_period_months "
            f"FROM {s}.subscription ORDER BY account_id, start_date"
        ).fetchall()
        names = dict(conn.execute(f"SELECT event_type_id, event_type_name FROM {s}.event_type").fetchall())
        lo, hi = START, START + timedelta(days=days)
        volume = conn.execute(
            f"SELECT event_type_id, count(*) FROM {s}.event WHERE event_time >= %s AND event_time < %s "
            f"GROUP BY 1 ORDER BY 2 DESC, 1",
            (lo, hi),
        ).fetchall()
        chosen = [t for t, _ in volume[:n_metrics]]
        counts = conn.execute(
            f"SELECT account_id, event_time::date - %s::date, event_type_id, count(*) FROM {s}.event "
            f"WHERE event_time >= %s AND event_time < %s AND event_type_id = ANY(%s) GROUP BY 1, 2, 3",
            (lo, lo, hi, chosen),
        ).fetchall()
        users = conn.execute(
            f"SELECT account_id, event_time::date - %s::date, count(DISTINCT user_id) FROM {s}.event "
            f"WHERE event_time >= %s AND event_time < %s GROUP BY 1, 2",
            (lo, lo, hi),
        ).fetchall()
    # each plan once: its lowest price (ChurnSim discounts some customers), seats and term
    seen: dict[str, Plan] = {}
    for _, product, _, _, amount, quantity, units, months in subs:
        if units == "users":
            p = seen.get(product)
            price = int(amount) if p is None else min(p.price, int(amount))
            seen[product] = Plan(product, price, int(quantity), months == 1)
    plans = sorted(seen.values(), key=lambda p: (p.price, p.name))
    plan_index = {p.name: i for i, p in enumerate(plans)}
    # the customers of the book: a subscription running on one of its days
    raw_ids = sorted({r[0] for r in subs if r[3] > START and r[2] < START + timedelta(days=days)})
    row = {a: i for i, a in enumerate(raw_ids)}
    n = len(raw_ids)
    sim_end = max(r[3] for r in subs)

    def idx(d: date) -> int:
        return (d - START).days

    begin = np.full(n, 10**6)
    end = np.full(n, -(10**6))
    plan = np.zeros((n, days), dtype=np.int16)
    seats = np.zeros((n, days), dtype=np.int32)
    mrr = np.zeros((n, days), dtype=np.int64)
    renewal = np.zeros((n, days), dtype=np.int32)
    for acc, product, start, stop, amount, quantity, units, _ in subs:
        a = row.get(acc)
        if a is None:
            continue
        i, j = idx(start), idx(stop)
        begin[a], end[a] = min(begin[a], i), max(end[a], j)
        lo_, hi_ = max(i, 0), min(j, days)
        if lo_ >= hi_:
            continue
        mrr[a, lo_:hi_] += round(amount)
        if units == "users":
            plan[a, lo_:hi_] = plan_index[product]
            seats[a, lo_:hi_] = int(quantity)
            renewal[a, lo_:hi_] = j
    # a churn is the end of the last subscription when the simulation went on past it; within the book
    churn_day = np.where((end < idx(sim_end)) & (end < days), end, -1)
    day = np.arange(days)
    alive = (begin[:, None] <= day[None, :]) & (
        (churn_day[:, None] < 0) | (churn_day[:, None] > day[None, :])
    )
    metrics = ("active_users", *(names[t] for t in chosen))
    values = {m: np.where(alive, 0.0, np.nan) for m in metrics}
    for acc, t, k in users:
        if acc in row and alive[row[acc], t]:
            values["active_users"][row[acc], t] = k
    for acc, t, type_id, k in counts:
        if acc in row and alive[row[acc], t]:
            values[names[type_id]][row[acc], t] = k
    for a in range(n):  # days before the book, or a gap between subscriptions: the nearest known state
        _carry(plan[a], seats[a], mrr[a], renewal[a])
    ids = [f"{config.upper()}{seed:02d}-{a:05d}" for a in raw_ids]
    return Book(
        config,
        seed,
        START,
        days,
        ids,
        metrics,
        values,
        {},
        begin,
        churn_day,
        plan,
        seats,
        mrr,
        renewal,
        plans,
    )


def _carry(plan: np.ndarray, seats: np.ndarray, mrr: np.ndarray, renewal: np.ndarray) -> None:
    """Fill days with no plan subscription (before the first in the book, after the last) from the
    nearest day with one, so an accounts file never lists 0 seats or 0 MRR for a customer."""
    known = np.nonzero(seats > 0)[0]
    if not len(known):
        return
    days = np.arange(len(seats))
    src = known[np.clip(np.searchsorted(known, days, side="right") - 1, 0, None)]  # the last known day
    for arr in (plan, seats, mrr, renewal):
        arr[:] = arr[src]
