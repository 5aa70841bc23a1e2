from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crm.fakecrm import FakeHubSpot, FakeSalesforce


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    yield fake
    fake.stop()


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce().start()
    yield fake
    fake.stop()


class Sleeps(list[float]):
    """An injected sleep that records what it was asked to wait, and never waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
