"""The catalog's rules: what a batch teaches it (per-batch counters), what declared types do
to an incoming event, and definitions created or changed by hand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from trackline.catalog import store, types
from trackline.clock import to_iso
from trackline.errors import Conflict, InvalidInput, NotFound
from trackline.ingest import values
from trackline.ingest.formats.native import SYNONYMS, item_error
from trackline.ingest.model import CanonicalEvent, ItemError
from trackline.settings import Limits


def observe(
    conn: sa.Connection,
    *,
    workspace_id: str,
    shapes: Iterable[tuple[str, values.Shape]],
    now_ms: int,
) -> None:
    """Count one batch of stored events, each given as its name and shape (its properties'
    types, ``values.property_kinds``), into the catalog: one upsert per distinct name and per
    distinct (event, property, type), never one per event. Events are grouped by shape first,
    so the per-property counting runs once per distinct shape, not once per event."""
    names: Counter[str] = Counter()
    kinds: Counter[tuple[str, str, str]] = Counter()
    for (name, shape), n in Counter(shapes).items():
        names[name] += n
        for prop, kind in shape:
            kinds[(name, prop, kind)] += n
    store.record(conn, workspace_id=workspace_id, names=names, types=kinds, now_ms=now_ms)


def enforce(
    conn: sa.Connection,
    *,
    workspace_id: str,
    events: list[tuple[int, CanonicalEvent]],
    raws: dict[int, Any],
    prefix: str,
    declared: dict[str, dict[str, str]] | None = None,
) -> tuple[list[tuple[int, CanonicalEvent]], list[ItemError]]:
    """Apply declared property types: coerce what converts without loss, refuse the rest with
    ``invalid_property_type`` and the field path. ``declared``: looked up already."""
    if declared is None:
        declared = store.declarations(
            conn, workspace_id=workspace_id, events={e.event for _, e in events}
        )
    if not declared:
        return events, []
    accepted, refused = [], []
    for position, event in events:
        rules = declared.get(event.event)
        try:
            if rules:
                event.parameters = _coerce_all(event.parameters, rules)
                event.parameters_json = event.shape = None  # the values may have changed
            accepted.append((position, event))
        except InvalidInput as exc:
            raw = raws.get(position)
            at = prefix.format(index=position) + _data_name(raw)
            exc.field = f"{at}.{exc.field}"
            refused.append(item_error(position if "{index}" in prefix else None, exc, raw))
    return accepted, refused


def _coerce_all(parameters: dict[str, Any], rules: dict[str, str]) -> dict[str, Any]:
    result = dict(parameters)
    for prop, kind in rules.items():
        if prop in result:
            try:
                result[prop] = types.coerce(result[prop], kind)
            except types.Refused as exc:
                raise InvalidInput(
                    f"{prop} is declared {kind}: {exc}", field=prop, code="invalid_property_type"
                ) from None
    return result


def _data_name(raw: Any) -> str:
    if isinstance(raw, dict):
        for name in SYNONYMS["parameters"]:
            if name in raw:
                return name
    return "parameters"


def public(definition: store.Definition) -> dict[str, Any]:
    """A definition as ``GET /api/v1/event-definitions`` shows it."""
    name = definition.name
    return {
        "name": name,
        "description": definition.description,
        "count": definition.count,
        "first_seen": to_iso(definition.first_seen) if definition.first_seen else None,
        "last_seen": to_iso(definition.last_seen) if definition.last_seen else None,
        "auto_collected": name in values.AUTO_COLLECTED,
        "standard": name in types.STANDARD_EVENTS,
        "naming": types.naming(name),
        "declared": definition.declared,
        "properties": _properties(definition),
    }


def _properties(definition: store.Definition) -> list[dict[str, Any]]:
    seen: dict[str, list[dict[str, Any]]] = {}
    for row in definition.seen:
        seen.setdefault(row["property"], []).append(
            {"type": row["type"], "count": row["count"], "last_seen": to_iso(row["last_seen"])}
        )
    result = []
    for prop in sorted(set(seen) | set(definition.declarations)):
        observed = sorted(seen.get(prop, []), key=lambda t: (-t["count"], t["type"]))
        declaration = definition.declarations.get(prop)
        result.append(
            {
                "name": prop,
                "type": declaration["type"] if declaration else observed[0]["type"],
                "declared": declaration is not None,
                "description": declaration["description"] if declaration else None,
                "types": observed,
                "conflict": len(observed) > 1,
            }
        )
    return result


def get(conn: sa.Connection, *, workspace_id: str, name: str) -> dict[str, Any]:
    found = store.definitions(conn, workspace_id=workspace_id, name=name)
    if not found:
        raise NotFound(f"no event definition {name!r}")
    return public(found[0])


def list_all(conn: sa.Connection, *, workspace_id: str) -> list[dict[str, Any]]:
    return [public(d) for d in store.definitions(conn, workspace_id=workspace_id)]


def create(
    conn: sa.Connection, *, workspace_id: str, body: Any, limits: Limits, now_ms: int
) -> dict[str, Any]:
    """``POST /api/v1/event-definitions``: a definition before any event arrives."""
    body = values.check_object(body, allowed={"name", "description", "properties"})
    name = values.check_event_name(body.get("name"), limits=limits, field="name")
    if name.startswith("@"):
        raise InvalidInput(
            "automatically collected events cannot be declared",
            field="name",
            code="reserved_event_name",
        )
    description = _description(body.get("description"), field="description")
    declared = _declarations(body.get("properties"), limits=limits)
    if not store.insert_definition(
        conn, workspace_id=workspace_id, name=name, description=description, now_ms=now_ms
    ):
        raise Conflict(
            f"{name!r} is defined already; change it with PATCH",
            field="name",
            code="already_exists",
        )
    _apply(conn, workspace_id, name, declared, now_ms)
    return get(conn, workspace_id=workspace_id, name=name)


def update(
    conn: sa.Connection, *, workspace_id: str, name: str, body: Any, limits: Limits, now_ms: int
) -> dict[str, Any]:
    """``PATCH /api/v1/event-definitions/{name}``: description and declared types."""
    body = values.check_object(body, allowed={"description", "properties"})
    changes: dict[str, Any] = {"declared": True}
    if "description" in body:
        changes["description"] = _description(body["description"], field="description")
    declared = _declarations(body.get("properties"), limits=limits)
    if not store.update_definition(
        conn, workspace_id=workspace_id, name=name, changes=changes, now_ms=now_ms
    ):
        raise NotFound(f"no event definition {name!r}")
    _apply(conn, workspace_id, name, declared, now_ms)
    return get(conn, workspace_id=workspace_id, name=name)


def _apply(
    conn: sa.Connection,
    ws: str,
    name: str,
    declared: dict[str, tuple[str | None, str | None]],
    now_ms: int,
) -> None:
    for prop, (kind, description) in declared.items():
        store.declare(
            conn,
            workspace_id=ws,
            event=name,
            prop=prop,
            kind=kind,
            description=description,
            now_ms=now_ms,
        )


def _description(value: Any, *, field: str) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 2000):
        raise InvalidInput("a description is a string of at most 2000 characters", field=field)
    return value


def _declarations(props: Any, *, limits: Limits) -> dict[str, tuple[str | None, str | None]]:
    """``{"quantity": "number"}`` or ``{"quantity": {"type": "number", "description": ...}}``;
    ``null`` removes a declaration."""
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise InvalidInput("properties must be an object of property: type", field="properties")
    result: dict[str, tuple[str | None, str | None]] = {}
    for prop, spec in props.items():
        field = f"properties.{prop}"
        values.check_property_name(prop, limits=limits, field=field)
        if spec is None:
            result[prop] = (None, None)
        elif isinstance(spec, str):
            result[prop] = (types.check_type(spec, field=field), None)
        elif isinstance(spec, dict) and set(spec) <= {"type", "description"}:
            result[prop] = (
                types.check_type(spec.get("type"), field=f"{field}.type"),
                _description(spec.get("description"), field=f"{field}.description"),
            )
        else:
            raise InvalidInput('a property is "type" or {"type", "description"}', field=field)
    return result
