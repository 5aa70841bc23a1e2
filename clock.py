"""Time is injected everywhere as a ``Clock`` so schedules, cadences and audit times are testable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The production clock: the current time, timezone-aware in UTC."""
    return datetime.now(UTC)
