"""One socket write per response: ``GatheringTransport`` over a real loopback connection. The
transport below it is a real asyncio socket transport; ``_Counting`` only counts the writes
that reach it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from trackline.transport import GatheringTransport


class _Counting:
    """The real transport, with each ``write`` it gets recorded."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class _Link:
    def __init__(self, counting: _Counting, gathering: GatheringTransport, peer: socket.socket):
        self.counting, self.gathering, self.peer = counting, gathering, peer

    async def received(self, size: int) -> bytes:
        """What the peer got: ``size`` bytes, or less if the stream ended first."""
        loop, data = asyncio.get_running_loop(), b""
        while len(data) < size:
            chunk = await loop.sock_recv(self.peer, size - len(data))
            if not chunk:
                break
            data += chunk
        return data


def _over_a_link(check: Callable[[_Link], Awaitable[None]]) -> None:
    """Run ``check`` in an event loop of its own, over a fresh loopback connection."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        counting = _Counting(transport)  # type: ignore[arg-type]
        gathering = GatheringTransport(counting, loop)  # type: ignore[arg-type]
        try:
            await check(_Link(counting, gathering, peer))
        finally:
            transport.abort()
            peer.close()

    asyncio.run(run())


async def _turn() -> None:
    """Let the event loop run what ``call_soon`` scheduled."""
    await asyncio.sleep(0)


def test_writes_of_one_turn_leave_as_one() -> None:
    async def check(link: _Link) -> None:
        link.gathering.write(b"HTTP/1.1 200 OK\r\n\r\n")
        link.gathering.write(b'{"ok":')
        link.gathering.write(b"true}")
        assert link.counting.writes == []  # nothing is sent before the turn ends
        assert link.gathering.get_write_buffer_size() == 30
        await _turn()
        assert link.counting.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']
        assert await link.received(30) == b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}'

    _over_a_link(check)


def test_writes_of_later_turns_are_not_held_back() -> None:
    async def check(link: _Link) -> None:
        link.gathering.write(b"one")
        await _turn()
        link.gathering.writelines([b"two", b"three"])
        await _turn()
        assert link.counting.writes == [b"one", b"twothree"]
        assert await link.received(11) == b"onetwothree"

    _over_a_link(check)


@pytest.mark.parametrize("end", ["close", "write_eof"])
def test_ending_the_stream_sends_what_was_gathered_first(end: str) -> None:
    async def check(link: _Link) -> None:
        link.gathering.write(b"last words")
        getattr(link.gathering, end)()
        assert link.counting.writes == [b"last words"]
        assert await link.received(100) == b"last words"  # and then the stream's end

    _over_a_link(check)


def test_aborting_drops_what_was_gathered() -> None:
    async def check(link: _Link) -> None:
        link.gathering.write(b"never sent")
        link.gathering.abort()
        await _turn()
        assert link.counting.writes == []
        assert link.gathering.is_closing()
        assert await link.received(100) == b""

    _over_a_link(check)


def test_everything_else_is_the_transports() -> None:
    async def check(link: _Link) -> None:
        assert link.gathering.get_extra_info("socket") is link.counting.get_extra_info("socket")
        link.gathering.pause_reading()
        assert not link.gathering.is_reading()
        link.gathering.resume_reading()
        assert link.gathering.is_reading()

    _over_a_link(check)
