"""The parse thread: large bodies leave the event loop, small ones and a stopped thread stay
on the caller's thread; results and errors come back as if parsed inline; stopping finishes
every body handed over."""

from __future__ import annotations

import asyncio
import threading

import pytest

from trackline.errors import InvalidInput
from trackline.ingest.parsing import ParseThread


def where() -> str:
    return threading.current_thread().name


def run(parsing: ParseThread, size: int) -> str:
    return asyncio.run(parsing.run(size, where))


def test_large_bodies_are_parsed_on_the_parse_thread() -> None:
    parsing = ParseThread(min_bytes=100)
    parsing.start()
    try:
        assert run(parsing, 100).startswith("trackline-parse")
        assert run(parsing, 99) == where()
    finally:
        asyncio.run(parsing.stop())


def test_without_a_running_thread_everything_is_parsed_inline() -> None:
    parsing = ParseThread(min_bytes=0)
    assert run(parsing, 10**6) == where()
    parsing.start()
    asyncio.run(parsing.stop())
    assert run(parsing, 10**6) == where()


def test_an_error_reaches_the_caller() -> None:
    parsing = ParseThread(min_bytes=0)
    parsing.start()

    def refuse() -> None:
        raise InvalidInput("not JSON", code="invalid_json")

    try:
        with pytest.raises(InvalidInput) as raised:
            asyncio.run(parsing.run(1, refuse))
        assert raised.value.code == "invalid_json"
    finally:
        asyncio.run(parsing.stop())


def test_stop_finishes_every_body_handed_over() -> None:
    """Two bodies handed over, the second queued behind the first, which is held: ``stop``
    does not return while they wait, returns once both were parsed, and a body that comes
    meanwhile is parsed inline."""
    parsing = ParseThread(min_bytes=0)
    parsing.start()
    release = threading.Event()
    done: list[str] = []

    def slow() -> None:
        release.wait(10)
        done.append(where())

    async def scenario() -> list[int]:
        first = asyncio.ensure_future(parsing.run(1, slow))
        second = asyncio.ensure_future(parsing.run(1, slow))
        await asyncio.sleep(0)  # both handed over
        stopping = asyncio.ensure_future(parsing.stop())
        await asyncio.sleep(0)  # the thread let go of; its shutdown waits for the two
        assert await parsing.run(1, where) == where()
        with pytest.raises(TimeoutError):  # held back by the held body, however long
            await asyncio.wait_for(asyncio.shield(stopping), 0.2)
        release.set()
        await stopping
        parsed_when_stopped = len(done)
        await asyncio.gather(first, second)
        return [parsed_when_stopped]

    assert asyncio.run(scenario()) == [2]
    assert all(name.startswith("trackline-parse") for name in done)
