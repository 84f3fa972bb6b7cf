"""Ingest a request: read and parse it, then hand the good events and the refused items to
the writer in one job; answer only after the commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trackline.api import Services
from trackline.errors import TracklineError
from trackline.ingest import ops, pipeline
from trackline.ingest.body import Body, parse_json
from trackline.ingest.formats.native import named_identities
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
    limits, now_ms = svc.settings.limits, svc.clock.now_ms()
    try:
        parsed = await svc.parsing.run(
            len(body.data), lambda: _parse(body, parse, limits=limits, now_ms=now_ms)
        )
    except TracklineError as exc:
        await keep_refused(svc, origin, body, exc)
        raise
    items = len(parsed.events) + len(parsed.ops) + len(parsed.errors)
    stored, refused = await _store(svc, origin, parsed)
    parsed.errors = sorted(parsed.errors + refused, key=lambda e: e.index or 0)
    positions: list[str | None] = [None] * items
    for position, event_id in stored:
        positions[position] = event_id
    parsed.events = [(p, e) for p, e in parsed.events if positions[p] is not None]
    return Outcome(parsed, positions)


def _parse(body: Body, parse: Parser, *, limits: Limits, now_ms: int) -> Parsed:
    data = parse_json(body, limit=limits.request_bytes)
    return parse(data, now_ms=now_ms, limits=limits, size=len(body.data))


@dataclass(slots=True)
class IngestJob:
    """One request's writer job. The writer runs all the ingest jobs of one workspace that
    share a transaction together (``run_many``), so a commit of many small requests costs one
    set of statements, not one per request."""

    svc: Services
    origin: Origin
    parsed: Parsed

    @property
    def merge_key(self) -> tuple[str, str]:
        return ("ingest", self.origin.workspace_id)

    def __call__(self, conn: Any) -> tuple[list[tuple[int, str]], list[ItemError]]:
        return IngestJob.run_many(conn, [self])[0]

    @staticmethod
    def run_many(
        conn: Any, jobs: list[IngestJob]
    ) -> list[tuple[list[tuple[int, str]], list[ItemError]]]:
        svc = jobs[0].svc
        now = svc.clock.now_ms()
        results = pipeline.admit_many(
            conn, works=[(j.origin, j.parsed) for j in jobs], now_ms=now, ids=svc.ids
        )
        answers = []
        for job, (stored, refused) in zip(jobs, results, strict=True):
            refused = refused + ops.apply(
                conn,
                workspace_id=job.origin.workspace_id,
                ops=job.parsed.ops,
                raws=job.parsed.raws,
                prefix=job.parsed.prefix,
                now_ms=now,
                ids=svc.ids,
            )
            pipeline.store_failures(
                conn, origin=job.origin, errors=job.parsed.errors + refused, now_ms=now
            )
            answers.append((stored, refused))
        return answers


async def _store(
    svc: Services, origin: Origin, parsed: Parsed
) -> tuple[list[tuple[int, str]], list[ItemError]]:
    """Hand the request to the writer; return once it is committed."""
    event_ids = svc.ids.many(svc.clock.now_ms(), len(parsed.events))
    for (_, event), event_id in zip(parsed.events, event_ids, strict=True):
        event.event_id = event_id
    job = IngestJob(svc, origin, parsed)
    return await svc.writer.submit(job, weight=max(1, len(parsed.events) + len(parsed.ops)))


async def keep_refused(
    svc: Services, origin: Origin, body: Body, exc: TracklineError, named: Any = None
) -> None:
    """Keep a request refused as a whole, with its body as received (and the identities
    ``named`` names, so erasure finds it)."""
    error = ItemError(
        index=None,
        code=exc.code,
        message=exc.message,
        field=exc.field,
        payload=body.data.decode("utf-8", errors="replace"),
        payload_truncated=body.too_large,
        **named_identities(named),
    )

    def job(conn: Any) -> None:
        pipeline.store_failures(conn, origin=origin, errors=[error], now_ms=svc.clock.now_ms())

    await svc.writer.submit(job)
