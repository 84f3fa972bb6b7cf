"""Ingest a request: read and parse it, then hand the good events and the refused items to
the writer in one job; answer only after the commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from trackline.api import Services
from trackline.errors import InvalidInput, TracklineError
from trackline.ingest import pipeline
from trackline.ingest.body import Body, too_large
from trackline.ingest.model import ItemError, Parsed
from trackline.ingest.pipeline import Origin
from trackline.settings import Limits

Parser = Callable[..., Parsed]


@dataclass(slots=True)
class Outcome:
    parsed: Parsed
    event_ids: list[str | None]  # per item position; None where refused


async def ingest(svc: Services, *, origin: Origin, body: Body, parse: Parser) -> Outcome:
    """Parse ``body`` with ``parse`` and store it. Whole-request problems (too large, not JSON,
    not the right shape) are kept in failed events too, then raised."""
    try:
        parsed = _parse(body, parse, limits=svc.settings.limits, now_ms=svc.clock.now_ms())
    except TracklineError as exc:
        await _keep_refused(svc, origin, body, exc)
        raise
    ids = await _store(svc, origin, parsed)
    positions: list[str | None] = [None] * (len(parsed.events) + len(parsed.errors))
    for (position, _), event_id in zip(parsed.events, ids, strict=True):
        positions[position] = event_id
    return Outcome(parsed, positions)


def _parse(body: Body, parse: Parser, *, limits: Limits, now_ms: int) -> Parsed:
    if body.too_large:
        raise too_large(limits.request_bytes)
    try:
        data = orjson.loads(body.data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    return parse(data, now_ms=now_ms, limits=limits, size=len(body.data))


async def _store(svc: Services, origin: Origin, parsed: Parsed) -> list[str]:
    items = [event for _, event in parsed.events]

    def job(conn: Any) -> list[str]:
        now = svc.clock.now_ms()
        pipeline.store_failures(conn, origin=origin, errors=parsed.errors, now_ms=now)
        if not items:
            return []
        return pipeline.store_events(conn, origin=origin, items=items, now_ms=now, ids=svc.ids)

    return await svc.writer.submit(job, weight=max(1, len(items)))


async def _keep_refused(svc: Services, origin: Origin, body: Body, exc: TracklineError) -> None:
    error = ItemError(
        index=None,
        code=exc.code,
        message=exc.message,
        field=exc.field,
        payload=body.data.decode("utf-8", errors="replace"),
        payload_truncated=body.too_large,
    )

    def job(conn: Any) -> None:
        pipeline.store_failures(conn, origin=origin, errors=[error], now_ms=svc.clock.now_ms())

    await svc.writer.submit(job)
