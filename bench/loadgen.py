"""A small HTTP/1.1 keep-alive load generator on asyncio streams: bodies are built before the
clock starts, so the client spends its CPU on sockets, not on JSON."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    requests: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def request_bytes(host: str, port: int, path: str, body: bytes, key: str | None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    return head.encode() + b"\r\n" + body


def get_bytes(host: str, port: int, path: str, key: str | None) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    return head.encode() + b"\r\n"


async def sequential(host: str, port: int, payloads: list[bytes]) -> Result:
    """Send ``payloads`` one after another on one keep-alive connection: the latency of each
    request alone (for reads timed while other connections load the server)."""
    result = Result()
    stream = await asyncio.open_connection(host, port)
    started = time.perf_counter()
    await _connection(stream, list(reversed(payloads)), result, None)
    result.seconds = time.perf_counter() - started
    return result


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connection(
    stream: Stream, queue: list[bytes], result: Result, pace: tuple[float, float] | None
) -> None:
    """Send from ``queue`` until it is empty. ``pace``: (first send time, interval) of an
    open-loop connection, whose latency counts from when a request was due, so a request held
    back by a slow response before it is not timed as if it had left on time."""
    reader, writer = stream
    due, interval = pace if pace is not None else (0.0, 0.0)
    try:
        while queue:
            payload = queue.pop()
            started = time.perf_counter()
            if pace is not None:
                if due > started:
                    await asyncio.sleep(due - started)
                started, due = due, due + interval
            writer.write(payload)
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status != 200:
                result.failures += 1
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    payloads: list[bytes],
    *,
    connections: int,
    rate_per_s: float | None = None,
    result: Result | None = None,
) -> Result:
    """Send every payload over ``connections`` keep-alive connections; with ``rate_per_s``,
    pace the whole run at that many requests per second, evenly spaced (open-loop, for latency
    at a load). ``result``: filled in as responses arrive (readable while a background run goes
    on)."""
    queue = list(reversed(payloads))
    result = result if result is not None else Result()
    opened = await asyncio.gather(
        *(asyncio.open_connection(host, port) for _ in range(connections))
    )
    started = time.perf_counter()  # after connecting: a first request is not timed with it
    await asyncio.gather(
        *(
            _connection(stream, queue, result, _pace(started, i, connections, rate_per_s))
            for i, stream in enumerate(opened)
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def _pace(
    started: float, index: int, connections: int, rate_per_s: float | None
) -> tuple[float, float] | None:
    """Connection ``index``'s first send time and interval: each sends every ``connections /
    rate_per_s`` seconds, the connections staggered by ``1 / rate_per_s``, so requests arrive
    evenly rather than all connections' at once."""
    if not rate_per_s:
        return None
    return started + (index + 1) / rate_per_s, connections / rate_per_s
