"""The shared KPIs, exactly as domain.md defines them, from the accounts' history (account_snapshots)
and the dates the accounts carry.

A churn belongs to the month its date falls in, not to the month of the export that first shows it:
accounts files often come weekly, so a churn on March 28 first appears in the April 2 file. So an
account's own ``churned_on`` decides when it stopped being a customer, and ``contract_start`` (when it
is earlier than the first file that lists the account as active) when it became one; the snapshots
decide only where the data carries no date. Amounts are MRR converted to one base currency with
configured rates; an account in a currency without a rate is left out and counted in ``excluded``.
Too little history gives None ("not enough data"), never a made-up number. Every rate says what its
denominator was, and churn and retention say where their dates came from."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from handoff.cadence import onboarding_completion
from settings import CadenceRules
from storage.models import Account, AccountSnapshot, Signal, UpsellOpportunity, is_nps

# The figures of one calendar month (compared with the month before) and of the 7 days before the
# digest (compared with the 7 days before those); the view picks "vs last month" / "vs last week" by it.
MONTHLY = (
    "churn_rate",
    "customer_retention_rate",
    "grr",
    "nrr",
    "onboarding_completion_rate",
    "mrr",
    "arr",
    "churned_mrr",
    "ltv",
    "nps",
)
WEEKLY = ("upsell_count", "upsell_mrr", "upsell_opportunities")


@dataclass(frozen=True)
class Snap:
    status: str
    mrr: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def json(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def last_full_month(as_of: date) -> Period:
    """The last calendar month that ended before ``as_of``."""
    first_this = as_of.replace(day=1)
    end = first_this - timedelta(days=1)
    return Period(end.replace(day=1), end)


def months_back(d: date, months: int) -> date:
    """The last day of the month ``months`` before ``d``'s month."""
    y, m = d.year, d.month - months
    while m <= 0:
        y, m = y - 1, m + 12
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return nxt - timedelta(days=1)


def year_before(d: date) -> date:
    """The same day a year earlier; a month's last day maps to that month's last day (Feb 28/29)."""
    if (d + timedelta(days=1)).day == 1:
        return months_back(d, 12)
    return d.replace(year=d.year - 1, day=min(d.day, 28) if d.month == 2 else d.day)


def _snapshots_at(session: Session, day: date) -> dict[int, Snap]:
    """Every account as the latest snapshot on or before ``day`` described it."""
    latest = (
        select(AccountSnapshot.account_id, func.max(AccountSnapshot.as_of).label("as_of"))
        .where(AccountSnapshot.as_of <= day)
        .group_by(AccountSnapshot.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            AccountSnapshot.account_id, AccountSnapshot.status, AccountSnapshot.mrr, AccountSnapshot.currency
        ).join(
            latest,
            (latest.c.account_id == AccountSnapshot.account_id) & (latest.c.as_of == AccountSnapshot.as_of),
        )
    )
    return {aid: Snap(status, mrr, cur) for aid, status, mrr, cur in rows}


@dataclass(frozen=True)
class Life:
    """When an account was a customer, by its own dates where it has them."""

    started: date | None  # its first day as a customer
    start_from: str  # "contract_start" or "snapshots"
    churned_on: date | None  # the churn date the data carries (status churned)
    first: Snap | None  # its earliest snapshot: its MRR before any file listed it
    csm: str | None
    segment: str | None


class Book:
    """The accounts that any accounts file listed, as they stood on any date."""

    def __init__(self, session: Session) -> None:
        self.session = session
        first_active = dict(
            session.execute(
                select(AccountSnapshot.account_id, func.min(AccountSnapshot.as_of))
                .where(AccountSnapshot.status == "active")
                .group_by(AccountSnapshot.account_id)
            ).all()
        )
        files = sorted(
            d for d in (_day(v) for v in session.scalars(select(AccountSnapshot.as_of).distinct())) if d
        )
        self.lives: dict[int, Life] = {
            row[0]: _life(row, _day(first_active.get(row[0])), files) for row in _first_listings(session)
        }

    def at(self, day: date) -> dict[int, Snap]:
        """Every account on ``day``: its snapshot then, with its status set by its dates."""
        state = _snapshots_at(self.session, day)
        for aid, life in self.lives.items():
            snap = state.get(aid)
            if life.churned_on is not None and life.churned_on <= day:
                state[aid] = Snap("churned", *((snap.mrr, snap.currency) if snap else (None, None)))
            elif life.started is None or life.started > day:
                continue  # not a customer yet: a snapshot (if any) says what it was
            elif snap is None:  # a customer before any file listed it: its first known MRR
                first = life.first or Snap("active", None, None)
                state[aid] = Snap("active", first.mrr, first.currency)
            elif snap.status == "churned" and life.churned_on is not None:
                state[aid] = Snap("active", snap.mrr, snap.currency)  # marked churned ahead of its date
        return state

    def has_history(self, day: date, *, dated: bool = False) -> bool:
        """Whether the data knows the book on ``day``: an accounts file as of then or before. With
        ``dated``, who the customers were is enough, and a customer's own contract_start dates it: counts
        (churn, retention) take that; money (MRR then, GRR, NRR) needs a file, as a start date carries
        no MRR of its own."""
        if dated and any(
            life.start_from == "contract_start" and life.started is not None and life.started <= day
            for life in self.lives.values()
        ):
            return True
        return (
            self.session.scalar(
                select(func.count()).select_from(AccountSnapshot).where(AccountSnapshot.as_of <= day)
            )
            > 0
        )


def _first_listings(session: Session) -> Any:
    """Each account's own dates and its first snapshot (the earliest file that listed it)."""
    first_any = (
        select(AccountSnapshot.account_id, func.min(AccountSnapshot.as_of).label("as_of"))
        .group_by(AccountSnapshot.account_id)
        .subquery()
    )
    return session.execute(
        select(
            Account.id,
            Account.contract_start,
            Account.status,
            Account.churned_on,
            Account.csm_email,
            Account.segment,
            AccountSnapshot.status,
            AccountSnapshot.mrr,
            AccountSnapshot.currency,
            first_any.c.as_of,
        )
        .join(first_any, first_any.c.account_id == Account.id)
        .join(
            AccountSnapshot,
            (AccountSnapshot.account_id == Account.id) & (AccountSnapshot.as_of == first_any.c.as_of),
        )
    )


def _life(row: Any, seen: date | None, files: list[date]) -> Life:
    """One account's life from its first listing, ``seen`` (its first file listing it active) and the
    days of every accounts file."""
    _, contract_start, status, churned_on, csm, segment, s_status, s_mrr, s_cur, listed = row
    # contract_start closes the gap between files: it moves the start back to the day after the
    # last file that did not list the account, never further (that file knew better). An account
    # first listed already churned was a customer from its contract_start to its churned_on.
    first_listed = _day(listed)
    earlier = files[: bisect_left(files, first_listed)] if first_listed else files
    ended = churned_on if status == "churned" else None
    if (
        contract_start is not None
        and (contract_start < seen if seen else ended is not None and contract_start <= ended)
        and (not earlier or contract_start > earlier[-1])
    ):
        started, source = contract_start, "contract_start"
    else:
        started, source = seen, "snapshots"
    return Life(
        started=started,
        start_from=source,
        churned_on=churned_on if status == "churned" else None,
        first=Snap(s_status, s_mrr, s_cur),
        csm=csm,
        segment=segment,
    )


def _day(value: Any) -> date | None:
    return None if value is None else value if isinstance(value, date) else date.fromisoformat(str(value))


def state_at(session: Session, day: date) -> dict[int, Snap]:
    """Every account on ``day`` (see ``Book.at``)."""
    return Book(session).at(day)


def has_history(session: Session, day: date) -> bool:
    return Book(session).has_history(day)


@dataclass
class Money:
    base: str
    rates: dict[str, Decimal]
    excluded: set[int] = field(default_factory=set)

    @classmethod
    def of_rules(cls, base_currency: str, fx_rates: dict[str, Any] | None) -> Money:
        return cls(base_currency.upper(), {k.upper(): Decimal(str(v)) for k, v in (fx_rates or {}).items()})

    def of(self, aid: int, snap: Snap | None) -> Decimal | None:
        if snap is None or snap.status != "active" or snap.mrr is None:
            return Decimal(0)
        cur = (snap.currency or self.base).upper()
        if cur == self.base:
            return snap.mrr
        rate = self.rates.get(cur)
        if rate is None:
            self.excluded.add(aid)
            return None
        return snap.mrr * rate


def _mrr(
    money: Money, ids: set[int], then: dict[int, Snap], now: dict[int, Snap]
) -> tuple[Decimal, Decimal, Decimal]:
    """For ``ids``: MRR then, MRR now, and MRR kept (now, capped at then), in the base currency; accounts
    in a currency without a rate are skipped (and counted by ``money``)."""
    total_then, total_now, kept = Decimal(0), Decimal(0), Decimal(0)
    for aid in ids:
        was, is_ = money.of(aid, then.get(aid)), money.of(aid, now.get(aid))
        if was is None or is_ is None:
            continue
        total_then, total_now, kept = total_then + was, total_now + is_, kept + min(was, is_)
    return total_then, total_now, kept


def _total(money: Money, ids: set[int], state: dict[int, Snap]) -> tuple[Decimal, int]:
    """MRR of ``ids`` in ``state`` and how many of them had a convertible amount."""
    total, counted = Decimal(0), 0
    for aid in ids:
        value = money.of(aid, state.get(aid))
        if value is not None:
            total, counted = total + value, counted + 1
    return total, counted


def _pct(num: Decimal | int, den: Decimal | int) -> float | None:
    return None if not den else round(float(Decimal(num) / Decimal(den) * 100), 1)


def _active(state: dict[int, Snap]) -> set[int]:
    return {aid for aid, s in state.items() if s.status == "active"}


def nrr_at(book: Book, money: Money, day: date) -> tuple[float | None, date, int, Decimal]:
    """NRR on ``day``: MRR then of the customers a year before, as a percentage of their MRR then;
    None without history a year back. The digest's text and its chart both use this."""
    year_ago = year_before(day)
    if not book.has_history(year_ago):
        return None, year_ago, 0, Decimal(0)
    cohort_then = book.at(year_ago)
    cohort = _active(cohort_then)
    then_mrr, now_mrr, _ = _mrr(money, cohort, cohort_then, book.at(day))
    return _pct(now_mrr, then_mrr), year_ago, len(cohort), then_mrr


def nps(session: Session, period: Period) -> tuple[float | None, int, int, int]:
    """NPS over ``period`` from the ``nps`` signals (0-10 answers): % promoters (9-10) - % detractors
    (0-6), with the number of answers, promoters and detractors."""
    values = session.scalars(
        select(Signal.value).where(is_nps(), Signal.day >= period.start, Signal.day <= period.end)
    ).all()
    promoters = sum(1 for v in values if v >= 9)
    detractors = sum(1 for v in values if v <= 6)
    score = round((promoters - detractors) / len(values) * 100, 1) if values else None
    return score, len(values), promoters, detractors


def _basis(counts: Counter[str]) -> str | None:
    """Where a period's dates came from: one source, both ("mixed"), or None when nothing happened."""
    used = [k for k, n in counts.items() if n]
    return None if not used else used[0] if len(used) == 1 else "mixed"


@dataclass(frozen=True)
class _Month:
    """What every figure of one month reads: the book at the day before it and at its last day."""

    book: Book
    money: Money
    period: Period
    before: date  # the day before the month: "at the start"
    start: dict[int, Snap]
    end: dict[int, Snap]
    at_start: set[int]
    at_end: set[int]
    enough: bool  # who the customers were: files or contract_start
    money_known: bool  # what they paid then: an accounts file as of then

    @property
    def ym(self) -> str:
        return f"{self.period.start:%Y-%m}"

    @property
    def churned(self) -> set[int]:
        return self.at_start - self.at_end

    @property
    def acquired(self) -> set[int]:
        return self.at_end - self.at_start


def month(
    session: Session,
    period: Period,
    *,
    money: Money,
    cadence: CadenceRules | None = None,
    gross_margin_pct: float | None = None,
    book: Book | None = None,
) -> dict[str, Any]:
    """One calendar month's figures, with their denominators in words and as data."""
    book = book or Book(session)
    before = period.start - timedelta(days=1)
    start, end = book.at(before), book.at(period.end)
    m = _Month(
        book,
        money,
        period,
        before,
        start,
        end,
        _active(start),
        _active(end),
        enough=book.has_history(before, dated=True),
        money_known=book.has_history(before),
    )
    out: dict[str, Any] = {"denominators": {}, "denominator_facts": {}}
    _customers(m, out)
    _retained_money(m, out)
    _onboarding(session, m, cadence, out)
    _revenue(m, gross_margin_pct, out)
    _nps(session, m, out)
    churned = m.churned
    out["by_csm"] = _rows(book, money, "csm", m.at_start, m.at_end, churned, start, end, m.enough)
    out["by_segment"] = _rows(book, money, "segment", m.at_start, m.at_end, churned, start, end, m.enough)
    return out


def _customers(m: _Month, out: dict[str, Any]) -> None:
    """Customers at the start and end, churned and new; churn and retention rates, and where their
    dates came from (the accounts' own dates or the snapshots)."""
    book, period, at_start, at_end, enough = m.book, m.period, m.at_start, m.at_end, m.enough
    churned, acquired = m.churned, m.acquired
    churn_from = Counter(
        "churned_on" if (d := book.lives[a].churned_on) and period.start <= d <= period.end else "snapshots"
        for a in churned
        if a in book.lives
    )
    start_from = Counter(
        "contract_start"
        if (life := book.lives[a]).start_from == "contract_start"
        and life.started is not None
        and period.start <= life.started <= period.end
        else "snapshots"  # a first file, or a customer who came back
        for a in acquired
        if a in book.lives
    )
    out.update(
        customers_at_start=len(at_start) if enough else None,
        customers_at_end=len(at_end),
        churned_customers=len(churned) if enough else None,
        new_customers=len(acquired) if enough else None,
        churn_dates_from=dict(churn_from),
        start_dates_from=dict(start_from),
    )
    out["churn_rate"] = _pct(len(churned), len(at_start)) if enough else None
    out["customer_retention_rate"] = _pct(len(at_end) - len(acquired), len(at_start)) if enough else None
    _customer_words(m, churn_from, start_from, out)


def _customer_words(
    m: _Month, churn_from: Counter[str], start_from: Counter[str], out: dict[str, Any]
) -> None:
    """The churn and retention rates' denominators, in words and as data."""
    at_start, ym = m.at_start, m.ym
    words, facts = out["denominators"], out["denominator_facts"]
    if m.enough:
        basis = _basis(churn_from)
        words["churn_rate"] = f"customers at the start of {ym} ({len(at_start)})" + (
            {
                "churned_on": "; churn dates from churned_on",
                "snapshots": "; churn dates from the snapshots (no churned_on in the data)",
                "mixed": f"; churn dates from churned_on ({churn_from['churned_on']}) and from the "
                f"snapshots ({churn_from['snapshots']})",
            }[basis]
            if basis
            else ""
        )
        start_basis = _basis(start_from)
        words["customer_retention_rate"] = f"customers at the start of {ym} ({len(at_start)})" + (
            {
                "contract_start": "; new customers by contract_start",
                "snapshots": "; new customers by the snapshots (no contract_start in the data)",
                "mixed": f"; new customers by contract_start ({start_from['contract_start']}) and by the "
                f"snapshots ({start_from['snapshots']})",
            }[start_basis]
            if start_basis
            else ""
        )
        fact = {"code": "customers_at_start", "month": ym, "count": len(at_start)}
        facts["churn_rate"] = {**fact, "dates": basis, **{f"from_{k}": n for k, n in churn_from.items()}}
        facts["customer_retention_rate"] = {
            **fact,
            "dates": start_basis,
            **{f"from_{k}": n for k, n in start_from.items()},
        }
    else:
        words["churn_rate"] = words["customer_retention_rate"] = "not enough data"
        facts["churn_rate"] = facts["customer_retention_rate"] = {
            "code": "no_history",
            "date": m.before.isoformat(),
        }


def _retained_money(m: _Month, out: dict[str, Any]) -> None:
    """GRR over the month and NRR over the year to its end."""
    money, ym, at_start = m.money, m.ym, m.at_start
    words, facts = out["denominators"], out["denominator_facts"]
    base_mrr, _, kept = _mrr(money, at_start, m.start, m.end)
    out["grr"] = _pct(kept, base_mrr) if m.money_known else None
    words["grr"] = (
        f"MRR at the start of {ym} of its {len(at_start)} customers ({base_mrr:,.0f} {money.base})"
        if m.money_known
        else "not enough data"
    )
    facts["grr"] = (
        {"code": "mrr_at_start", "month": ym, "count": len(at_start), "amount": float(base_mrr)}
        | {"currency": money.base}
        if m.money_known
        else {"code": "no_history", "date": m.before.isoformat()}
    )

    value, year_ago, cohort, then_mrr = nrr_at(m.book, money, m.period.end)
    out["nrr"] = value
    if value is None and not cohort:
        words["nrr"] = f"not enough data: no account history on or before {year_ago}"
        facts["nrr"] = {"code": "no_history", "date": year_ago.isoformat()}
    else:
        words["nrr"] = (
            f"MRR at {year_ago:%Y-%m-%d} of the {cohort} customers then ({then_mrr:,.0f} {money.base})"
        )
        facts["nrr"] = {
            "code": "mrr_year_ago",
            "date": year_ago.isoformat(),
            "count": cohort,
            "amount": float(then_mrr),
            "currency": money.base,
        }


def _onboarding(session: Session, m: _Month, cadence: CadenceRules | None, out: dict[str, Any]) -> None:
    """The share of onboardings that ended in the month with every milestone touched."""
    ym = m.ym
    done, onboarded = onboarding_completion(session, m.period.start, m.period.end, cadence)
    out["onboarding_completion_rate"] = _pct(done, onboarded)
    out["denominators"]["onboarding_completion_rate"] = (
        f"companies whose {(cadence or CadenceRules()).onboarding_days}-day onboarding ended in "
        f"{ym} ({onboarded})"
        if onboarded
        else f"not enough data: no onboarding ended in {ym}"
    )
    out["denominator_facts"]["onboarding_completion_rate"] = (
        {"code": "onboardings_ended", "month": ym, "count": onboarded}
        if onboarded
        else {"code": "no_onboarding_ended", "month": ym}
    )


def _revenue(m: _Month, gross_margin_pct: float | None, out: dict[str, Any]) -> None:
    """MRR and ARR as the month closed, churned MRR (what the month's churned customers paid at its
    start), ARPA and LTV."""
    money, ym = m.money, m.ym
    mrr, paying = _total(money, m.at_end, m.end)
    lost, _ = _total(money, m.churned, m.start)
    # a month-end MRR needs an accounts file by then, or one within a week after (a weekly export)
    known_end = m.book.has_history(m.period.end + timedelta(days=7))
    out["mrr"], out["arr"] = (float(mrr), float(mrr * 12)) if known_end else (None, None)
    out["churned_mrr"] = float(lost) if m.money_known else None
    out["arpa"] = float(round(mrr / paying)) if paying else None

    # LTV = ARPA x gross margin / monthly churn rate; undefined (None, with why) when churn is 0
    churn = out["churn_rate"]
    why = (
        "no_margin"
        if gross_margin_pct is None
        else "no_history"
        if churn is None
        else "no_customers"
        if not paying
        else "no_churn"
        if churn == 0
        else None
    )
    out["ltv"] = (
        None if why else round(float(mrr / paying * Decimal(str(gross_margin_pct)) / Decimal(str(churn))))
    )
    out["denominators"]["ltv"] = (
        f"ARPA {out['arpa']:,.0f} {money.base} x gross margin {gross_margin_pct:g}% / churn rate {churn}%"
        if not why
        else {
            "no_margin": "not set: gross_margin_pct under digest in baton.yml",
            "no_history": "not enough data for a churn rate",
            "no_customers": f"no paying customers at the end of {ym}",
            "no_churn": f"undefined: no customer churned in {ym} (division by a churn rate of 0)",
        }[why]
    )
    out["denominator_facts"]["ltv"] = (
        {
            "code": "ltv",
            "arpa": out["arpa"],
            "margin": gross_margin_pct,
            "churn": churn,
            "currency": money.base,
        }
        if not why
        else {"code": f"ltv_{why}", "month": ym}
    )


def _nps(session: Session, m: _Month, out: dict[str, Any]) -> None:
    """The month's NPS with its answers, promoters and detractors."""
    ym = m.ym
    score, answers, promoters, detractors = nps(session, m.period)
    out.update(nps=score, nps_answers=answers, nps_promoters=promoters, nps_detractors=detractors)
    out["denominators"]["nps"] = (
        f"{answers} NPS answers in {ym} ({promoters} promoters, {detractors} detractors)"
        if answers
        else f"not enough data: no NPS answers in {ym}"
    )
    out["denominator_facts"]["nps"] = (
        {"code": "nps_answers", "month": ym, "count": answers}
        | {"promoters": promoters, "detractors": detractors}
        if answers
        else {"code": "no_nps", "month": ym}
    )


def _rows(
    book: Book,
    money: Money,
    attr: str,
    at_start: set[int],
    at_end: set[int],
    churned: set[int],
    start: dict[int, Snap],
    end: dict[int, Snap],
    enough: bool,
) -> list[dict[str, Any]]:
    """The month per CSM or per segment (as the accounts carry them now), biggest MRR first."""
    groups: dict[str | None, set[int]] = {}
    for aid in at_start | at_end:
        life = book.lives.get(aid)
        groups.setdefault(getattr(life, attr) if life else None, set()).add(aid)
    rows = []
    for key, ids in groups.items():
        s, e, c = ids & at_start, ids & at_end, ids & churned
        mrr, _ = _total(money, e, end)
        lost, _ = _total(money, c, start)
        rows.append(
            {
                attr: key,
                "customers_at_start": len(s) if enough else None,
                "customers_at_end": len(e),
                "churned_customers": len(c) if enough else None,
                "churn_rate": _pct(len(c), len(s)) if enough else None,
                "mrr": float(mrr),
                "churned_mrr": float(lost) if enough else None,
            }
        )
    rows.sort(key=lambda r: (-r["mrr"], r[attr] is None, r[attr] or ""))
    return rows


def week(session: Session, as_of: date, *, money: Money) -> dict[str, Any]:
    """The 7 days before ``as_of``: expansions (accounts whose MRR rose) and opportunities handed to IS."""
    book = Book(session)
    week_start, week_end = as_of - timedelta(days=7), as_of - timedelta(days=1)
    w0, w1 = book.at(week_start - timedelta(days=1)), book.at(week_end)
    count, gained = 0, Decimal(0)
    for aid in _active(w0) & _active(w1):
        was, now = money.of(aid, w0.get(aid)), money.of(aid, w1.get(aid))
        if was is not None and now is not None and now > was:
            count += 1
            gained += now - was
    opportunities = session.scalar(
        select(func.count())
        .select_from(UpsellOpportunity)
        .where(
            UpsellOpportunity.created_at >= datetime.combine(week_start, time.min, UTC),
            UpsellOpportunity.created_at < datetime.combine(as_of, time.min, UTC),
        )
    )
    return {
        "upsell_count": count,
        "upsell_mrr": float(gained),
        "upsell_opportunities": opportunities,
        "denominators": {"upsell_count": f"accounts whose MRR rose between {week_start} and {week_end}"},
    }


def compute(
    session: Session,
    as_of: date,
    *,
    base_currency: str = "JPY",
    fx_rates: dict[str, Any] | None = None,
    cadence: CadenceRules | None = None,
    gross_margin_pct: float | None = None,
) -> dict[str, Any]:
    """The digest's figures as one JSON-ready object (percentages as numbers, None = not enough data):
    the last full month's, and the last 7 days' (``periods`` says which is which)."""
    money = Money.of_rules(base_currency, fx_rates)
    period = last_full_month(as_of)
    monthly = month(session, period, money=money, cadence=cadence, gross_margin_pct=gross_margin_pct)
    weekly = week(session, as_of, money=money)
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "base_currency": money.base,
        "period": period.json(),
        "week": {
            "start": (as_of - timedelta(days=7)).isoformat(),
            "end": (as_of - timedelta(days=1)).isoformat(),
        },
        "periods": {**{k: "month" for k in MONTHLY}, **{k: "week" for k in WEEKLY}},
        **monthly,
        **{k: v for k, v in weekly.items() if k != "denominators"},
    }
    out["denominators"] = {**monthly["denominators"], **weekly["denominators"]}
    out["excluded_accounts_without_fx_rate"] = len(money.excluded)
    return out
