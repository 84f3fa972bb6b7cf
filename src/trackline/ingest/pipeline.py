"""The write half of ingestion, run inside the writer's transaction: dedup, identity
resolution, ``@first_session``, event rows, group links and the failed-events store."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from trackline.catalog import service as catalog
from trackline.catalog import store as catalog_store
from trackline.ids import EventIds
from trackline.ingest import store
from trackline.ingest.model import CanonicalEvent, ItemError, Parsed
from trackline.ingest.store import EVENT, ID, MESSAGE_ID
from trackline.ingest.values import Shape, property_kinds
from trackline.people import identity
from trackline.people import store as people_store

FIRST_SESSION = "@first_session"


@dataclass(slots=True)
class Origin:
    """Who sent a request and through which endpoint; kept with its failed events."""

    workspace_id: str
    key_id: str | None
    source: str


@dataclass(slots=True)
class Checked:
    """A parsed request after today's catalog rules: what may be stored, what is refused."""

    accepted: list[tuple[int, CanonicalEvent]]
    refused: list[ItemError]
    known: dict[str, str]  # message id -> stored event id


def check(
    conn: sa.Connection,
    *,
    workspace_id: str,
    parsed: Parsed,
    known: dict[str, str] | None = None,
    declared: dict[str, dict[str, str]] | None = None,
) -> Checked:
    """Apply declared types to the events not stored before. A repeat of a stored message id
    is not checked again: it answers with the original event, as a retry must. ``known`` and
    ``declared``: looked up already (for several requests at once)."""
    if known is None:
        known = store.existing_message_ids(
            conn,
            workspace_id=workspace_id,
            message_ids=[e.message_id for _, e in parsed.events if e.message_id],
        )
    repeats = [(p, e) for p, e in parsed.events if e.message_id in known]
    fresh = [(p, e) for p, e in parsed.events if e.message_id not in known]
    accepted, refused = catalog.enforce(
        conn,
        workspace_id=workspace_id,
        events=fresh,
        raws=parsed.raws,
        prefix=parsed.prefix,
        declared=declared,
    )
    return Checked(sorted(repeats + accepted, key=lambda pe: pe[0]), refused, known)


def admit_many(
    conn: sa.Connection, *, works: list[tuple[Origin, Parsed]], now_ms: int, ids: EventIds
) -> list[tuple[list[tuple[int, str]], list[ItemError]]]:
    """Several requests of one workspace in one pass: one dedup look-up, one declarations
    look-up, one identity resolution, one insert and one catalog update for all of them.
    Returns, per request, its ``(position, event id)`` pairs and its refused items."""
    ws = works[0][0].workspace_id
    events = [e for _, parsed in works for _, e in parsed.events]
    # PostgreSQL: the hold and the identities' look-up go with the declarations look-up (and
    # the transaction's BEGIN) in one round trip; identity resolution then finds them done.
    identity.look_up_soon(
        conn, workspace_id=ws, pairs=[(e.external_id, e.device_id) for e in events]
    )
    declared = catalog_store.declarations(conn, workspace_id=ws, events={e.event for e in events})
    known: dict[str, str] = {}
    if declared:
        known = store.existing_message_ids(
            conn, workspace_id=ws, message_ids=[e.message_id for e in events if e.message_id]
        )
    # Else no look-up first: without declarations a repeat needs no check, and a stored
    # message id makes the insert skip its row, which is rare (a client's retry) and sends
    # the commit down the path that counts only the new rows and then looks the message ids
    # up to answer with the kept events. One statement less per commit.
    checks = [
        check(conn, workspace_id=ws, parsed=parsed, known=known, declared=declared)
        for _, parsed in works
    ]
    flat = [(n, p, e) for n, c in enumerate(checks) for p, e in c.accepted]
    event_ids = (
        store_events(
            conn,
            origin=works[0][0],
            items=[e for _, _, e in flat],
            now_ms=now_ms,
            ids=ids,
            known=known,
        )
        if flat
        else []
    )
    people_store.forget_identities_ahead(conn, workspace_id=ws)  # when nothing was stored
    stored: list[list[tuple[int, str]]] = [[] for _ in works]
    for (n, position, _), event_id in zip(flat, event_ids, strict=True):
        stored[n].append((position, event_id))
    return [(stored[n], checks[n].refused) for n in range(len(works))]


def store_checked(
    conn: sa.Connection, *, origin: Origin, checked: Checked, now_ms: int, ids: EventIds
) -> list[tuple[int, str]]:
    """Store the accepted events; ``(position, event id)`` for each."""
    if not checked.accepted:
        return []
    stored = store_events(
        conn,
        origin=origin,
        items=[e for _, e in checked.accepted],
        now_ms=now_ms,
        ids=ids,
        known=checked.known,
    )
    return [(p, i) for (p, _), i in zip(checked.accepted, stored, strict=True)]


def store_events(
    conn: sa.Connection,
    *,
    origin: Origin,
    items: list[CanonicalEvent],
    now_ms: int,
    ids: EventIds,
    known: dict[str, str] | None = None,
) -> list[str]:
    """Store events (deduplicated by message id) and return each one's event id, in order.
    ``known`` (message id -> event id), when the caller looked them up already."""
    ws = origin.workspace_id
    if known is None:
        known = store.existing_message_ids(
            conn, workspace_id=ws, message_ids=[e.message_id for e in items if e.message_id]
        )
    result: list[str | None] = [None] * len(items)
    fresh: list[tuple[int, CanonicalEvent]] = []
    drawn: Iterator[str] | None = None  # ids for the events that came without one
    for position, item in enumerate(items):
        if item.message_id is not None and item.message_id in known:
            result[position] = known[item.message_id]  # a repeat leaves its id unused
        else:
            event_id = item.event_id
            if event_id is None:
                drawn = drawn or iter(ids.many(now_ms, len(items)))
                event_id = next(drawn)
            if item.message_id is not None:
                known[item.message_id] = event_id
            result[position] = event_id
            fresh.append((position, item))
    # A message id stored meanwhile by another writer (or, unlooked-up, before): take the id
    # that is stored, so every answer names the event that exists.
    known.update(_write_fresh(conn, ws=ws, fresh=fresh, result=result, now_ms=now_ms, ids=ids))
    for position, item in enumerate(items):  # repeats answer with the id that was kept
        if item.message_id is not None:
            result[position] = known[item.message_id]
    return [r for r in result if r is not None]


def _write_fresh(
    conn: sa.Connection,
    *,
    ws: str,
    fresh: list[tuple[int, CanonicalEvent]],
    result: list[str | None],
    now_ms: int,
    ids: EventIds,
) -> dict[str, str]:
    """Resolve identities and write the event rows; returns ``write_rows``'s answer."""
    resolution = identity.resolve(
        conn,
        workspace_id=ws,
        pairs=[(e.external_id, e.device_id) for _, e in fresh],
        now_ms=now_ms,
    )
    firsts = dict(resolution.new_devices)
    rows: list[store.EventRow] = []
    shapes: list[Shape] = []
    groups: set[tuple[str, str]] = set()
    for n, ((position, item), person) in enumerate(zip(fresh, resolution.person_ids, strict=True)):
        if n in firsts:
            rows.append(first_session_row(ws, person, item, now_ms, ids))
            shapes.append(())
        rows.append(store.event_row(str(result[position]), ws, person, item, now_ms))
        shapes.append(item.shape if item.shape is not None else property_kinds(item.parameters))
        if item.group_id is not None:
            groups.add((person, item.group_id))
    stored = write_rows(conn, workspace_id=ws, rows=rows, shapes=shapes, now_ms=now_ms)
    people_store.add_groups(conn, workspace_id=ws, pairs=groups, now_ms=now_ms)
    return stored


def write_rows(
    conn: sa.Connection,
    *,
    workspace_id: str,
    rows: list[store.EventRow],
    shapes: list[Shape],
    now_ms: int,
) -> dict[str, str]:
    """Insert event rows and count them, with their ``shapes`` (each row's property types),
    into the catalog (once per batch). A row whose message id is stored already is skipped;
    then returns ``message id -> stored event id`` for the rows' message ids (empty when
    every row was inserted)."""
    stored: dict[str, str] = {}
    if store.insert_events(conn, rows) < len(rows):  # count only the new rows
        stored = store.existing_message_ids(
            conn,
            workspace_id=workspace_id,
            message_ids=[r[MESSAGE_ID] for r in rows if r[MESSAGE_ID] is not None],
        )
        kept = [stored.get(r[MESSAGE_ID], r[ID]) == r[ID] for r in rows]
        rows = list(itertools.compress(rows, kept))
        shapes = list(itertools.compress(shapes, kept))
    names = [r[EVENT] for r in rows]
    catalog.observe(
        conn, workspace_id=workspace_id, shapes=zip(names, shapes, strict=True), now_ms=now_ms
    )
    return stored


def first_session_row(
    ws: str, person: str, e: CanonicalEvent, now_ms: int, ids: EventIds
) -> store.EventRow:
    """The ``@first_session`` row of a new device, deduplicated by a per-device message id."""
    first = CanonicalEvent(
        event=FIRST_SESSION,
        external_id=e.external_id,
        device_id=e.device_id,
        parameters={},
        timestamp=e.timestamp,
        # A control character keeps this key out of the clients' message-id namespace.
        message_id=f"{FIRST_SESSION}\x1f{e.device_id}",
    )
    return store.event_row(ids.new(now_ms), ws, person, first, now_ms)


def store_failures(
    conn: sa.Connection, *, origin: Origin, errors: list[ItemError], now_ms: int
) -> None:
    """Keep every refused item with its raw payload, reason, key and time."""
    store.insert_failed(
        conn,
        [
            {
                "id": "fev_" + secrets.token_hex(16),
                "workspace_id": origin.workspace_id,
                "key_id": origin.key_id,
                "source": origin.source,
                "item_index": e.index,
                "code": e.code,
                "message": _storable(e.message),
                "field": _storable(e.field),
                "payload": _storable(e.payload),
                "payload_truncated": e.payload_truncated,
                "external_id": _storable(e.external_id),
                "device_id": _storable(e.device_id),
                "received_at": now_ms,
            }
            for e in errors
        ],
    )


def _storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: keep a refused payload with NUL written as ``\\u0000``."""
    return text.replace("\x00", "\\u0000") if text is not None and "\x00" in text else text
