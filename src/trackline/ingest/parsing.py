"""Where request bodies are parsed: large ones on one thread of their own, so the event loop
keeps answering other requests (reads, single events, health checks) while a batch is checked.

Parsing a 100-event batch is about a millisecond of pure Python. On the event loop, a read
that arrives behind a burst of batches waits for all of them (docs/benchmark.md, round 8).
On a thread, the interpreter's switch interval shares the loop and the parse thread in
slices of half a millisecond. One thread is enough: parsing holds the GIL, so more threads
would only take turns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ParseThread:
    """Runs ``fn`` on the parse thread when the body has at least ``min_bytes`` (and the
    thread runs: between ``start`` and ``stop``), else inline on the caller's thread."""

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Open the thread (it starts with the first body handed to it)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="trackline-parse")

    async def stop(self) -> None:
        """Finish what was handed over, then end the thread. Bodies that come meanwhile are
        parsed inline: the thread is let go of on the event loop, between two ``run``s."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)

    async def run(self, size: int, fn: Callable[[], T]) -> T:
        """``fn()``, on the thread if ``size`` (the body's bytes) calls for it."""
        pool = self._pool
        if pool is None or size < self.min_bytes:
            return fn()
        return await asyncio.get_running_loop().run_in_executor(pool, fn)
