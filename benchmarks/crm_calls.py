"""API calls a won-deal pass costs, against the fake HubSpot and Salesforce on loopback (the rate
limits are counted in calls: HubSpot 190 per 10 s and 4 searches per second, Salesforce a daily budget).

    .venv/bin/python benchmarks/crm_calls.py [--deals 1 100 250] [--owners 5] [--opportunities 1 2500]

Printed per run: the deals read, the API calls made (HubSpot) or the query pages and token requests
(Salesforce), and the seconds on loopback (which say nothing about the real APIs' latency).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm.hubspot import HubSpot  # noqa: E402
from crm.salesforce import Salesforce  # noqa: E402
from settings import HubSpotRules, SalesforceRules  # noqa: E402
from tests.crm.fakecrm import FakeHubSpot, FakeSalesforce, seed_hubspot_deal  # noqa: E402
from tests.crm.test_salesforce import opportunity  # noqa: E402

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deals", type=int, nargs="+", default=[1, 100, 250])
    p.add_argument("--owners", type=int, default=5)
    p.add_argument("--opportunities", type=int, nargs="+", default=[1, 2500])
    args = p.parse_args()
    for n in args.deals:
        hs = FakeHubSpot().start()
        try:
            for i in range(n):
                day = f"2026-11-{10 + i % 18:02d}T00:00:00Z"
                seed_hubspot_deal(hs, name=f"D{i}", modified=day, owner=str(70 + i % args.owners))
            client = HubSpot(hs.base_url, hs.token, HubSpotRules(), sleep=lambda s: None)
            t = time.perf_counter()
            got = list(client.won_deals(SINCE))
            took = time.perf_counter() - t
            searches = sum(1 for r in hs.requests if r.path.endswith("/search"))
            print(
                f"hubspot: {len(got)} won deals, {min(n, args.owners)} owners -> {client.calls} API calls "
                f"({searches} searches), {took:.2f} s on loopback"
            )
        finally:
            hs.stop()
    for n in args.opportunities:
        sf = FakeSalesforce().start()
        try:
            sf.opportunities = [opportunity(i, stamp="2026-11-28T10:00:00.000+0000") for i in range(n)]
            client = Salesforce(
                sf.base_url, sf.client_id, sf.client_secret, SalesforceRules(), sleep=lambda s: None
            )
            t = time.perf_counter()
            got = list(client.won_deals(SINCE))
            took = time.perf_counter() - t
            print(
                f"salesforce: {len(got)} won opportunities -> {client.calls} query page(s) + "
                f"{client.logins} token request(s), {took:.2f} s on loopback"
            )
        finally:
            sf.stop()


if __name__ == "__main__":
    main()
