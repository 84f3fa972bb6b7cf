"""Event ids: UUIDv7, strictly increasing within a process, one at a time or many at once."""

from __future__ import annotations

import os
import uuid

import pytest

from trackline import ids as ids_module
from trackline.ids import RANDOM_POOL_BYTES, EventIds

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


def test_randomness_comes_from_a_pool_refilled_as_it_runs_out(monkeypatch) -> None:
    """One system call per ``RANDOM_POOL_BYTES``, not per call; a call larger than the pool
    gets a draw of its own size; every id stays distinct across refills."""
    draws: list[int] = []
    real = os.urandom

    def urandom(size: int) -> bytes:
        draws.append(size)
        return real(size)

    monkeypatch.setattr(ids_module.os, "urandom", urandom)
    ids = EventIds()
    made = [ids.new(NOW) for _ in range(3 * RANDOM_POOL_BYTES // 16)]
    assert draws == [RANDOM_POOL_BYTES] * 3
    made += ids.many(NOW, 2 * RANDOM_POOL_BYTES // 8)
    assert draws[3] == 8 * (2 * RANDOM_POOL_BYTES // 8 + 1)
    assert made == sorted(made) and len(set(made)) == len(made)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_does_not_reuse_the_parents_randomness() -> None:
    ids = EventIds()
    ids.new(NOW)  # the pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.close(read)
        os.write(write, ids.new(NOW + 1).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    random_bits = (1 << 62) - 1
    assert _uuid(child).int & random_bits != _uuid(ids.new(NOW + 1)).int & random_bits
