"""One socket write per response. uvicorn writes a response's head and its body with two
``transport.write`` calls, each a ``send`` system call that lets go of the interpreter lock;
in a server process whose writer thread wants the lock, the event loop then waits to get it
back, twice per response (docs/benchmark.md, round 15). The protocol here hands uvicorn a
transport that gathers what is written during one turn of the event loop and sends it at the
end of the turn, in one call."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheringTransport:
    """A transport whose ``write``\\ s within one event loop turn reach ``transport`` as one
    write, soon after (``call_soon``); everything else is ``transport``'s own. Closing sends
    what is gathered first; aborting drops it, as an abort drops the transport's buffer."""

    __slots__ = ("_gathered", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._gathered: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._gathered is None:
            self._gathered = [data]
            self._loop.call_soon(self._send)
        else:
            self._gathered.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def get_write_buffer_size(self) -> int:
        gathered = sum(map(len, self._gathered or ()))
        return gathered + self._transport.get_write_buffer_size()

    def close(self) -> None:
        self._send()
        self._transport.close()

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def abort(self) -> None:
        self._gathered = None
        self._transport.abort()

    def _send(self) -> None:
        gathered, self._gathered = self._gathered, None
        if gathered and not self._transport.is_closing():
            self._transport.write(gathered[0] if len(gathered) == 1 else b"".join(gathered))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatheringProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``GatheringTransport`` (``uvicorn.Config(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gathering = GatheringTransport(transport, asyncio.get_running_loop())
        super().connection_made(gathering)  # type: ignore[arg-type]
