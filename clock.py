"""Time is injected everywhere as a ``Clock`` so schedules, cadences and audit times are testable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The production clock: the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def local_day(when: datetime, timezone: str) -> date:
    """The team's calendar day of a stored (UTC) moment: a handoff at 08:00 in Tokyo is that day's."""
    return when.astimezone(ZoneInfo(timezone)).date()


def local_date(clock: Clock, timezone: str, *, days_ago: int = 0) -> date:
    """The calendar date in the team's timezone (schedule.timezone), not UTC's: in Tokyo, 08:00 on
    the 23rd is still the 22nd in UTC."""
    return (clock().astimezone(ZoneInfo(timezone)) - timedelta(days=days_ago)).date()
