"""A pass over the fake CRMs into a real database (SQLite and PostgreSQL): won deals taken once
however often they come (polls, repeated webhooks, two passes at once), the owner-DM seam in the
same transaction, and accounts through the same ingest as files."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from crm import sync
from crm.cli import run_sync, sources
from crm.hubspot import HubSpot
from crm.model import WonDeal
from crm.salesforce import Salesforce
from crm.webhook import won_deal_ids
from settings import HubSpotRules, Settings
from storage import Database
from storage.models import Account, AccountSnapshot, CrmCursor, CrmDeal, Outbox
from storage.outbox import enqueue
from tests.clocks import FakeClock
from tests.crm.conftest import Sleeps
from tests.crm.fakecrm import FakeHubSpot, FakeSalesforce, seed_hubspot_deal
from tests.crm.test_salesforce import opportunity

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo


def settings_for(hs: FakeHubSpot | None = None, sf: FakeSalesforce | None = None, **env: str) -> Settings:
    values = dict(env)
    if hs is not None:
        values |= {"HUBSPOT_ACCESS_TOKEN": hs.token, "HUBSPOT_API_URL": hs.base_url}
    if sf is not None:
        values |= {
            "SALESFORCE_CLIENT_ID": sf.client_id,
            "SALESFORCE_CLIENT_SECRET": sf.client_secret,
            "SALESFORCE_LOGIN_URL": sf.base_url,
        }
    return Settings.from_env(values)


def run(settings: Settings, db: Database, clock: FakeClock, *args: str, **kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    crms = sources(settings, sleep=Sleeps())
    code = run_sync(
        settings,
        db,
        clock=clock,
        dry_run="--dry-run" in args,
        as_json="--json" in args,
        crms=crms,
        out=out,
        err=err,
        **kw,
    )
    return code, out.getvalue(), err.getvalue()


def customer(hs: FakeHubSpot, name: str, **props: str) -> str:
    base = {
        "name": name,
        "lifecyclestage": "customer",
        "baton_plan": "Pro",
        "baton_mrr": "120000",
        "baton_seats": "50",
        "baton_contract_start": "2026-01-01",
        "baton_renewal_date": "1798761600000",  # 2027-01-01 as HubSpot's midnight milliseconds
        "baton_csm_email": "csm@example.com",
    }
    return hs.add("companies", {**base, **props})


def deals(db: Database) -> list[CrmDeal]:
    with db.session() as s:
        return list(s.scalars(select(CrmDeal).order_by(CrmDeal.id)))


def test_a_won_deal_is_taken_once_and_the_watermark_moves(db: Database, hubspot: FakeHubSpot) -> None:
    seeded = seed_hubspot_deal(hubspot, modified="2026-11-28T10:00:00.000Z")
    clock = FakeClock(NOW)
    settings = settings_for(hubspot)
    code, out, _ = run(settings, db, clock)
    assert code == 0
    assert "hubspot: 1 won deal(s) taken, 0 seen before" in out
    [row] = deals(db)
    assert (row.crm, row.deal_id, row.owner_email, row.company_id) == (
        "hubspot", seeded.deal_id, "rep@example.com", seeded.company_id
    )  # fmt: skip
    assert row.announced_at is None  # no DM hook given: it waits for bot/
    kept = WonDeal.from_json(row.deal)
    assert kept.account_name == "Acme Corp" and len(kept.contacts) == 2 and len(kept.line_items) == 2
    with db.session() as s:
        cursor = s.get(CrmCursor, ("hubspot", sync.WON_DEALS))
        assert cursor is not None and cursor.watermark == "2026-11-28T10:00:00+00:00"

    code, out, _ = run(settings, db, clock)  # the deal comes again (modified >= the watermark)
    assert code == 0 and "0 won deal(s) taken, 1 seen before" in out
    assert len(deals(db)) == 1
    search = [r for r in hubspot.requests if r.path.endswith("/deals/search")][-1]
    gte = next(f for f in search.body["filterGroups"][0]["filters"] if f["operator"] == "GTE")
    again_from = datetime(2026, 11, 28, 10, tzinfo=UTC) - sync.OVERLAP  # read again a little before
    assert gte["value"] == str(int(again_from.timestamp() * 1000))


def test_the_first_pass_looks_back_backfill_days_only(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot, name="Old", modified="2026-11-20T00:00:00Z")  # 11 days before NOW
    recent = seed_hubspot_deal(hubspot, name="Recent", modified="2026-11-29T00:00:00Z")
    run(settings_for(hubspot), db, FakeClock(NOW))
    assert [r.deal_id for r in deals(db)] == [recent.deal_id]


def test_a_dry_run_records_nothing(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot)
    customer(hubspot, "Kept KK")
    code, out, _ = run(settings_for(hubspot), db, FakeClock(NOW), "--dry-run")
    assert code == 0 and "would be taken" in out and "2 accounts would sync (2 new" in out
    assert deals(db) == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(CrmCursor)) == 0
        assert s.scalar(select(func.count()).select_from(Account)) == 0


def test_the_dm_seam_runs_in_the_same_transaction_as_the_deal(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot)
    seed_hubspot_deal(hubspot, name="Second", owner="78", owner_email=None)  # an owner with no email

    def queue_dm(session: Any, row: CrmDeal) -> None:
        enqueue(session, None, sync.WON_DEAL_DM, NOW, crm_deal=row.id, owner_email=row.owner_email)

    code, _, _ = run(settings_for(hubspot), db, FakeClock(NOW), on_won=queue_dm)
    assert code == 0
    rows = deals(db)
    assert [r.owner_email for r in rows] == ["rep@example.com", None]
    assert all(r.announced_at == NOW for r in rows)
    with db.session() as s:
        queued = list(s.scalars(select(Outbox).where(Outbox.action == sync.WON_DEAL_DM).order_by(Outbox.id)))
        assert [o.payload["crm_deal"] for o in queued] == [r.id for r in rows]
        assert sync.unannounced(s) == []

    def broken(session: Any, row: CrmDeal) -> None:
        raise RuntimeError("Slack user lookup exploded")

    seed_hubspot_deal(hubspot, name="Third", modified="2026-11-30T00:00:00Z")
    with pytest.raises(RuntimeError):
        run(settings_for(hubspot), db, FakeClock(NOW), on_won=broken)
    assert len(deals(db)) == 2  # neither the deal nor the watermark moved: the next pass retries it
    with db.session() as s:
        assert s.get(CrmCursor, ("hubspot", sync.WON_DEALS)).watermark.startswith("2026-11-28")  # type: ignore[union-attr]


def test_a_webhook_delivered_twice_and_then_polled_takes_the_deal_once(
    db: Database, hubspot: FakeHubSpot, sleeps: Sleeps
) -> None:
    seeded = seed_hubspot_deal(hubspot)
    body = json.dumps(
        [{"subscriptionType": "deal.propertyChange", "objectId": int(seeded.deal_id),
          "propertyName": "dealstage", "propertyValue": "closedwon"}]
    ).encode()  # fmt: skip
    hs = HubSpot(hubspot.base_url, hubspot.token, HubSpotRules(), sleep=sleeps)
    clock = FakeClock(NOW)
    taken = []
    for _ in range(2):  # HubSpot retries a delivery it thinks failed
        fetched = sync.Fetched("hubspot", NOW, list(hs.deals(won_deal_ids(body, ["closedwon"]))))
        with db.session() as s:
            taken.append(len(sync.record(s, fetched, clock=clock).new))
    assert taken == [1, 0]
    _, out, _ = run(settings_for(hubspot), db, clock)
    assert "0 won deal(s) taken, 1 seen before" in out
    assert len(deals(db)) == 1


def test_two_passes_at_once_take_each_deal_once(db: Database, hubspot: FakeHubSpot, sleeps: Sleeps) -> None:
    for i in range(3):
        seed_hubspot_deal(hubspot, name=f"D{i}", modified=f"2026-11-2{i}T00:00:00Z")
    hs = HubSpot(hubspot.base_url, hubspot.token, HubSpotRules(), sleep=sleeps)
    fetched = sync.fetch(hs, datetime(2026, 11, 1, tzinfo=UTC), clock=FakeClock(NOW))
    start, counts, errors = threading.Barrier(2), [], []

    def one() -> None:
        try:
            start.wait()
            with db.session() as s:
                counts.append(len(sync.record(s, fetched, clock=FakeClock(NOW)).new))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and sorted(counts) == [0, 3]
    assert len(deals(db)) == 3


def test_hubspot_companies_sync_through_ingest_with_the_field_mapping(
    db: Database, hubspot: FakeHubSpot
) -> None:
    kept = customer(hubspot, "株式会社ミライ物流", baton_contract_start="2026-01-01T00:00:00Z")
    hubspot.add("companies", {"name": "A lead", "lifecyclestage": "lead"})
    code, out, err = run(settings_for(hubspot), db, FakeClock(NOW))
    assert code == 0, err
    assert "hubspot: 1 accounts synced (1 new, 0 updated)" in out
    with db.session() as s:
        [acc] = s.scalars(select(Account))
        assert (acc.external_id, acc.name, acc.plan, acc.seats, acc.csm_email) == (
            kept, "株式会社ミライ物流", "Pro", 50, "csm@example.com"
        )  # fmt: skip
        assert (acc.contract_start, acc.renewal_date, acc.mrr) == (date(2026, 1, 1), date(2027, 1, 1), 120000)
        [snap] = s.scalars(select(AccountSnapshot))
        assert snap.as_of == date(2026, 12, 1)  # the team's day (Tokyo) of the pass
    hubspot.objects["companies"][kept]["baton_seats"] = "60"
    code, out, _ = run(settings_for(hubspot), db, FakeClock(NOW))
    assert "1 accounts synced (0 new, 1 updated)" in out
    with db.session() as s:
        assert s.scalar(select(Account.seats)) == 60


def test_a_bad_crm_record_refuses_the_accounts_and_names_the_record(
    db: Database, hubspot: FakeHubSpot
) -> None:
    customer(hubspot, "Good KK")
    bad = customer(hubspot, "Bad KK", baton_mrr="")
    code, _, err = run(settings_for(hubspot), db, FakeClock(NOW), "--json")
    assert code == 1
    assert f"hubspot record {bad}: missing mrr" in err
    assert "accounts refused, nothing was written" in err
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0


def test_salesforce_end_to_end_deals_and_accounts(db: Database, salesforce: FakeSalesforce) -> None:
    salesforce.opportunities = [
        opportunity(n, stamp=f"2026-11-2{n + 5}T00:00:00.000+0000") for n in range(1, 4)
    ]
    salesforce.page_size = 2
    salesforce.accounts = [
        {
            "attributes": {"type": "Account"},
            "Id": "001000000000000001",
            "Name": "株式会社テスト1",
            "Plan__c": "Pro",
            "MRR__c": 120000.0,
            "Seats__c": 50.0,
            "Contract_Start__c": "2026-01-01",
            "Renewal_Date__c": "2027-01-01",
            "CSM_Email__c": None,
        }
    ]
    clock = FakeClock(NOW)
    code, out, err = run(settings_for(sf=salesforce), db, clock, "--json")
    assert code == 0, err
    report = json.loads(out)["salesforce"]
    assert len(report["won_deals"]["new"]) == 3 and report["accounts"] == {
        "rows": 1,
        "created": 1,
        "updated": 0,
    }
    assert report["limit_info"].startswith("api-usage=")
    salesforce.expire_sessions()  # the next pass finds its token expired: renewed once, quietly
    code, out, err = run(settings_for(sf=salesforce), db, clock, "--json")
    assert code == 0, err
    assert json.loads(out)["salesforce"]["won_deals"]["already_taken"] == 1  # the newest, at the watermark
    assert len(deals(db)) == 3
    with db.session() as s:
        assert s.scalar(select(Account.seats)) == 50


def test_one_crm_failing_does_not_stop_the_other(
    db: Database, hubspot: FakeHubSpot, salesforce: FakeSalesforce
) -> None:
    seed_hubspot_deal(hubspot)
    salesforce.limit_exceeded = True
    code, out, err = run(settings_for(hubspot, salesforce), db, FakeClock(NOW))
    assert code == 1
    assert "hubspot: 1 won deal(s) taken" in out
    assert "salesforce: Salesforce's API request limit is used up (api-usage=" in err
    assert [r.crm for r in deals(db)] == ["hubspot"]


def test_no_crm_configured_is_one_line_with_the_fix(db: Database) -> None:
    code, _, err = run(Settings.from_env({}), db, FakeClock(NOW))
    assert code == 2 and "HUBSPOT_ACCESS_TOKEN" in err and len(err.strip().splitlines()) == 1


def test_app_py_dispatches_crm_sync(tmp_path: Any, hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import app

    seed_hubspot_deal(hubspot, modified=datetime.now(UTC).isoformat())
    for k, v in {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_API_URL": hubspot.base_url,
    }.items():
        monkeypatch.setenv(k, v)
    for k in ("SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "BATON_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    assert app.main(["crm", "sync", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hubspot"]["won_deals"]["new"]) == 1


def test_either_crm_is_on_when_its_credentials_are_set() -> None:
    assert sources(Settings.from_env({})) == []
    assert [type(s) for s in sources(Settings.from_env({"SALESFORCE_CLIENT_ID": "a"}))] == []  # no secret
    both = {"HUBSPOT_ACCESS_TOKEN": "x", "SALESFORCE_CLIENT_ID": "a", "SALESFORCE_CLIENT_SECRET": "b"}
    assert [type(s) for s in sources(Settings.from_env(both))] == [HubSpot, Salesforce]


def test_the_summary_is_in_the_team_language(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot)
    code, out, _ = run(settings_for(hubspot, BATON_LOCALE="ja"), db, FakeClock(NOW))
    assert code == 0
    assert "hubspot：受注した商談1件を取り込みました（取り込み済み0件）。" in out
    assert "hubspot：顧客1社を同期しました（新規1社、更新0社）。" in out


def test_a_deal_committed_late_inside_the_overlap_is_still_taken(db: Database, hubspot: FakeHubSpot) -> None:
    """A deal whose change lands in the search index after a later one was seen: the next poll reads
    from OVERLAP before the watermark, so it is found; the one seen already is not taken twice."""
    first = seed_hubspot_deal(hubspot, name="First", modified="2026-11-30T10:00:00Z")
    settings, clock = settings_for(hubspot), FakeClock(NOW)
    run(settings, db, clock)
    late = seed_hubspot_deal(hubspot, name="Late", modified="2026-11-30T09:55:00Z")  # indexed only now
    code, out, _ = run(settings, db, clock)
    assert code == 0 and "1 won deal(s) taken, 1 seen before" in out
    assert [r.deal_id for r in deals(db)] == [first.deal_id, late.deal_id]


def test_the_watermark_never_passes_the_time_the_read_began(db: Database, hubspot: FakeHubSpot) -> None:
    seed_hubspot_deal(hubspot, modified="2026-12-01T03:00:00Z")  # the CRM's clock is two hours ahead
    run(settings_for(hubspot), db, FakeClock(NOW))
    with db.session() as s:
        assert s.get(CrmCursor, ("hubspot", sync.WON_DEALS)).watermark == NOW.isoformat()  # type: ignore[union-attr]
