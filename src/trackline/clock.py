"""Time as integer milliseconds since the Unix epoch, UTC, behind a replaceable clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FixedClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def to_iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with a ``Z`` and millisecond precision.
    (``time.gmtime`` and one format: reads call this twice per event shown.)"""
    year, month, day, hour, minute, second = time.gmtime(ms // 1000)[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - the fastest here
        year,
        month,
        day,
        hour,
        minute,
        second,
        ms % 1000,
    )
