"""The parse thread: large bodies leave the event loop, small ones and a stopped thread stay
on the caller's thread; results and errors come back as if parsed inline."""

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
        parsing.stop()


def test_without_a_running_thread_everything_is_parsed_inline() -> None:
    parsing = ParseThread(min_bytes=0)
    assert run(parsing, 10**6) == where()
    parsing.start()
    parsing.stop()
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
        parsing.stop()


def test_stop_finishes_what_was_handed_over() -> None:
    parsing = ParseThread(min_bytes=0)
    parsing.start()
    release = threading.Event()
    done: list[str] = []

    def slow() -> None:
        release.wait(5)
        done.append(where())

    async def scenario() -> None:
        pending = asyncio.ensure_future(parsing.run(1, slow))
        await asyncio.sleep(0.05)  # handed over, waiting on ``release``
        stopper = threading.Thread(target=parsing.stop)
        stopper.start()
        release.set()
        await pending
        stopper.join(5)
        assert not stopper.is_alive()

    asyncio.run(scenario())
    assert len(done) == 1 and done[0].startswith("trackline-parse")
