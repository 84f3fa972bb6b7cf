"""Event ids: UUIDv7, strictly increasing within a process, one at a time or many at once."""

from __future__ import annotations

import uuid

from trackline.ids import EventIds

NOW = 1_700_000_000_000


def _uuid(event_id: str) -> uuid.UUID:
    assert event_id.startswith("evt_") and len(event_id) == 4 + 32
    return uuid.UUID(event_id[4:])


def test_ids_are_uuid7_carrying_the_millisecond() -> None:
    ids = EventIds()
    for event_id in [ids.new(NOW), *ids.many(NOW + 5, 3)]:
        value = _uuid(event_id)
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
    assert _uuid(ids.new(NOW + 9)).int >> 80 == NOW + 9


def test_ids_increase_across_calls_within_and_across_milliseconds() -> None:
    ids = EventIds()
    made = [*ids.many(NOW, 500), ids.new(NOW), *ids.many(NOW - 10, 20), *ids.many(NOW + 1, 50)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert ids.many(NOW, 0) == []


def test_a_full_millisecond_moves_on_to_the_next() -> None:
    """12 bits of sequence: past 4,096 ids in one millisecond the ids borrow the next one."""
    ids = EventIds()
    made = ids.many(NOW, 5000)
    assert made == sorted(made) and len(set(made)) == 5000
    assert {_uuid(i).int >> 80 for i in made} == {NOW, NOW + 1}


def test_ids_are_not_guessable_from_the_previous_one() -> None:
    ids = EventIds()
    first, second = ids.many(NOW, 2)
    assert _uuid(second).int & ((1 << 62) - 1) != _uuid(first).int & ((1 << 62) - 1)
    assert len({EventIds().new(NOW) for _ in range(50)}) == 50
