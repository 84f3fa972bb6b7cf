"""Replay: re-run stored failed events through today's rules (for example after a declared
type was corrected). What passes now is stored and leaves the failed store; the rest stays,
with its new reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from trackline.errors import InvalidInput, TracklineError
from trackline.failures import store
from trackline.failures.store import FailedRow
from trackline.ids import EventIds
from trackline.ingest import ops, pipeline
from trackline.ingest.body import decode_json
from trackline.ingest.formats import flarelane, native, segment
from trackline.ingest.model import Parsed
from trackline.ingest.pipeline import Origin
from trackline.settings import Limits

Reparse = Callable[[Any, FailedRow, int, Limits], Parsed]


def _track(body: Any, row: FailedRow, now_ms: int, limits: Limits) -> Parsed:
    return native.parse_track(body, now_ms=now_ms, limits=limits, size=len(row.payload))


def _batched(whole: Any, key: str) -> Reparse:
    """A batch endpoint's parser: the whole body, or one item re-parsed alone in a batch of one
    (it keeps the position and field paths it had in its batch)."""

    def reparse(body: Any, row: FailedRow, now_ms: int, limits: Limits) -> Parsed:
        size = len(row.payload)
        if row.item_index is None:
            return whole(body, now_ms=now_ms, limits=limits, size=size)  # type: ignore[no-any-return]
        parsed: Parsed = whole({key: [body]}, now_ms=now_ms, limits=limits, size=size)
        return _reindex(parsed, key, row.item_index)

    return reparse


def _reindex(parsed: Parsed, key: str, index: int) -> Parsed:
    for error in parsed.errors:
        error.index = index
        if error.field:
            error.field = error.field.replace(f"{key}[0]", f"{key}[{index}]", 1)
    parsed.events = [(index, e) for _, e in parsed.events]
    parsed.ops = [(index, o) for _, o in parsed.ops]
    parsed.raws = {index: parsed.raws[0]} if 0 in parsed.raws else {}
    return parsed


def _segment_one(kind: str) -> Reparse:
    parse = segment.parse_one(kind)

    def reparse(body: Any, row: FailedRow, now_ms: int, limits: Limits) -> Parsed:
        return parse(body, now_ms=now_ms, limits=limits, size=len(row.payload))  # type: ignore[no-any-return]

    return reparse


# Sources whose payloads can be replayed, by the endpoint that refused them. A Segment message
# replays without its batch's ``sentAt``: its time is taken as sent.
REPARSERS: dict[str, Reparse] = {
    "api/v1/track": _track,
    "api/v1/track/batch": _batched(native.parse_batch, "events"),
    "v1/projects/track": _batched(flarelane.parse, "events"),
    "v1/batch": _batched(segment.parse_batch, "batch"),
    **{f"v1/{kind}": _segment_one(kind) for kind in sorted(segment.TYPES)},
}


def replay(
    conn: sa.Connection,
    *,
    workspace_id: str,
    code: str | None,
    ids: list[str] | None,
    limit: int,
    limits: Limits,
    event_ids: EventIds,
    now_ms: int,
) -> dict[str, Any]:
    """Replay up to ``limit`` failed events, oldest first, in the current transaction."""
    results = [
        _one(conn, workspace_id, row, limits, event_ids, now_ms)
        for row in store.pick(conn, workspace_id=workspace_id, code=code, ids=ids, limit=limit)
    ]
    stored = sum(1 for r in results if r["status"] == "stored")
    return {
        "replayed": len(results),
        "stored": stored,
        "failed": len(results) - stored,
        "results": results,
    }


def _one(
    conn: sa.Connection, ws: str, row: FailedRow, limits: Limits, event_ids: EventIds, now_ms: int
) -> dict[str, Any]:
    try:
        parsed = _reparse(row, limits)
    except TracklineError as exc:
        return _still_failing(conn, ws, row, exc.code, exc.message, exc.field)
    checked = pipeline.check(conn, workspace_id=ws, parsed=parsed)
    errors = parsed.errors + checked.refused
    single = row.item_index is not None or not parsed.prefix
    if errors and (single or not (checked.accepted or parsed.ops)):
        first = errors[0]
        return _still_failing(conn, ws, row, first.code, first.message, first.field)
    refused = ops.apply(
        conn,
        workspace_id=ws,
        ops=parsed.ops,
        raws=parsed.raws,
        prefix=parsed.prefix,
        now_ms=now_ms,
        ids=event_ids,
    )
    if refused and single:  # a refused operation wrote nothing
        return _still_failing(conn, ws, row, refused[0].code, refused[0].message, refused[0].field)
    errors += refused
    origin = Origin(ws, row.key_id, row.source)
    pipeline.store_failures(conn, origin=origin, errors=errors, now_ms=now_ms)
    stored = [
        event_id
        for _, event_id in pipeline.store_checked(
            conn, origin=origin, checked=checked, now_ms=now_ms, ids=event_ids
        )
    ]
    store.delete(conn, workspace_id=ws, failed_id=row.id)
    return {
        "id": row.id,
        "status": "stored",
        "event_ids": stored,
        "new_failures": [e.public() for e in errors],
    }


def _reparse(row: FailedRow, limits: Limits) -> Parsed:
    reparse = REPARSERS.get(row.source)
    if reparse is None:
        raise InvalidInput(f"failed events from {row.source} cannot be replayed", code=row.code)
    if row.payload_truncated:
        raise InvalidInput("the payload was truncated when it was kept", code=row.code)
    return reparse(decode_json(row.payload), row, row.received_at, limits)


def _still_failing(
    conn: sa.Connection, ws: str, row: FailedRow, code: str, message: str, field: str | None
) -> dict[str, Any]:
    store.set_reason(
        conn, workspace_id=ws, failed_id=row.id, code=code, message=message, field=field
    )
    return {"id": row.id, "status": "failed", "code": code, "message": message, "field": field}


def parse_request(body: Any) -> tuple[str | None, list[str] | None, int]:
    """``{"code"?: str, "ids"?: [str], "limit"?: 1..1000}`` (an empty body replays all)."""
    if body is None:
        body = {}
    if not isinstance(body, dict) or set(body) - {"code", "ids", "limit"}:
        raise InvalidInput('the body is {"code"?, "ids"?, "limit"?}', code="invalid_request")
    code, ids, limit = body.get("code"), body.get("ids"), body.get("limit", 1000)
    if code is not None and not isinstance(code, str):
        raise InvalidInput("code must be a string", field="code")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise InvalidInput("ids must be a list of failed-event ids", field="ids")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidInput("limit must be 1 to 1000", field="limit")
    return code, ids, limit
