"""``to_iso``: the one way a stored time is shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trackline.clock import to_iso


def _reference(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@pytest.mark.parametrize(
    "ms",
    [
        0,
        1,
        999,
        1000,
        951_782_400_000,  # 2000-02-29
        1_795_523_149_048,
        1_795_523_149_999,
        4_107_542_399_000,  # 2100-02-28T23:59:59
        253_402_300_799_999,  # the latest time accepted
    ],
)
def test_to_iso_is_utc_with_milliseconds(ms: int) -> None:
    assert to_iso(ms) == _reference(ms)


def test_to_iso_known_value() -> None:
    assert to_iso(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert to_iso(253_402_300_799_999) == "9999-12-31T23:59:59.999Z"
