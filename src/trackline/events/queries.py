"""Event read queries. Newest first: ``timestamp`` descending, ties by storage order.

A page leaves the database as one JSON array text, built by the database (``json_object`` and
``json_group_array`` on SQLite, ``json_build_object`` and ``json_agg`` on PostgreSQL) and passed
through to the response untouched (``orjson.Fragment``). Fetched row by row, a 50-event page
cost 50 SQLite steps, each of which lets go of Python's lock and must win it back from the busy
ingest threads; as one value it is one step, and no Python work per event."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from trackline.errors import InvalidInput
from trackline.people import store as people_store
from trackline.storage import timeline
from trackline.storage.schema import events

_NEWEST_FIRST = (events.c.timestamp.desc(), events.c.seq.desc())
# The event object of spec 3.1: its fields in order, and which hold JSON or a time.
_FIELDS = [c.name for c in events.columns if c.name not in ("seq", "message_id")]
_JSON = frozenset({"parameters", "context"})
_TIMES = frozenset({"timestamp", "created_at"})


def _iso(dialect: str, ms: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """SQL for ``clock.to_iso``: ms since the epoch as ``YYYY-MM-DDTHH:MM:SS.mmmZ``. Whole
    seconds and the milliseconds apart, so no float rounding enters."""
    seconds = ms.op("/")(sa.literal_column("1000"))  # integer division: times are >= 0
    padded = sa.cast(ms % sa.literal_column("1000") + sa.literal_column("1000"), sa.Text)
    millis = sa.func.substr(padded, sa.literal_column("2"))  # 7 -> "1007" -> "007"
    if dialect == "sqlite":
        whole = sa.func.strftime(
            sa.literal_column("'%Y-%m-%dT%H:%M:%S'"), seconds, sa.literal_column("'unixepoch'")
        )
    else:
        utc = sa.func.timezone(sa.literal_column("'UTC'"), sa.func.to_timestamp(seconds))
        whole = sa.func.to_char(utc, sa.literal_column("""'YYYY-MM-DD"T"HH24:MI:SS'"""))
    return (
        whole.op("||")(sa.literal_column("'.'")).op("||")(millis).op("||")(sa.literal_column("'Z'"))
    )


def _json_page(dialect: str, page: sa.Subquery) -> sa.ColumnElement[str]:
    """The rows of ``page`` (an ordered subquery of events) as one JSON array text."""
    pairs: list[sa.ColumnElement[object]] = []
    for name in _FIELDS:
        value: sa.ColumnElement[object] = page.c[name]
        if name in _TIMES:
            value = _iso(dialect, page.c[name])
        elif name in _JSON and dialect == "sqlite":
            value = sa.func.json(page.c[name])  # stored text -> JSON, not a string
        pairs += [sa.literal_column(f"'{name}'"), value]  # a constant key, typed as text
    if dialect == "sqlite":
        # SQLite aggregates the rows in the order the ordered subquery yields them.
        array = sa.func.json_group_array(sa.func.json_object(*pairs))
        return sa.func.coalesce(array, sa.literal_column("'[]'"))
    ordered = postgresql.aggregate_order_by(
        sa.func.json_build_object(*pairs), page.c.timestamp.desc(), page.c.seq.desc()
    )
    empty = sa.literal_column("'[]'::json")
    return sa.cast(sa.func.coalesce(sa.func.json_agg(ordered), empty), sa.Text)


# Optional filters, in a fixed order; each binds the parameters named after it. A person is
# given by an id that may have been merged away (``person_id``) or by a user id (``user_id``),
# and resolved in the same statement.
_OPTIONAL = ("person_id", "user_id", "device_id", "event", "since", "until", "cursor_ts")
_PERSON = {"person_id": people_store.live_id_sql, "user_id": people_store.user_person_sql}
# Filters only the event rows can answer (a person's timeline entries hold no more than time).
_ON_EVENTS: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
    "device_id": lambda: events.c.device_id == sa.bindparam("device_id"),
    "event": lambda: events.c.event == sa.bindparam("event"),
}


def _given(params: dict[str, object]) -> tuple[str, ...]:
    """The optional filters set in ``params`` (the key of a cached statement)."""
    return tuple(name for name in _OPTIONAL if params.get(name) is not None)


def _in_time(
    given: tuple[str, ...], ts: sa.ColumnElement[int], seq: sa.ColumnElement[int]
) -> list[sa.ColumnElement[bool]]:
    conditions = {
        "since": lambda: ts >= sa.bindparam("since"),
        "until": lambda: ts < sa.bindparam("until"),
        "cursor_ts": lambda: (
            sa.tuple_(ts, seq)
            < sa.tuple_(
                sa.bindparam("cursor_ts", type_=sa.BigInteger),
                sa.bindparam("cursor_seq", type_=sa.BigInteger),
            )
        ),
    }
    return [conditions[name]() for name in given if name in conditions]


@dataclass(frozen=True)
class _Rows:
    """Where the matching events are found: ``events`` itself, or a person's timeline entries
    (joined to ``events`` when a filter needs the event rows). ``timestamp`` and ``seq`` order
    them newest first."""

    source: sa.FromClause
    where: list[sa.ColumnElement[bool]]
    timestamp: sa.ColumnElement[int]
    seq: sa.ColumnElement[int]

    def newest_first(self, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        return (
            sa.select(*columns)
            .select_from(self.source)
            .where(*self.where)
            .order_by(self.timestamp.desc(), self.seq.desc())
        )


def _rows(dialect: str, given: tuple[str, ...]) -> _Rows:
    on_events = [_ON_EVENTS[name]() for name in given if name in _ON_EVENTS]
    person = next((name for name in given if name in _PERSON), None)
    if person is None or not timeline.in_tables(dialect):  # PostgreSQL: an index on events
        workspace = events.c.workspace_id == sa.bindparam("workspace_id")
        where = [workspace, *on_events, *_in_time(given, events.c.timestamp, events.c.seq)]
        if person is not None:
            where.append(events.c.person_id == _PERSON[person]())
        return _Rows(events, where, events.c.timestamp, events.c.seq)
    found = timeline.entries(
        sa.bindparam("workspace_id"),
        _PERSON[person](),
        lambda t: _in_time(given, t.c.timestamp, t.c.seq),
    )
    source = found.join(events, events.c.seq == found.c.seq) if on_events else found
    return _Rows(source, on_events, found.c.timestamp, found.c.seq)


def _page(rows: _Rows, *, paged: bool) -> sa.Subquery:
    """The page's events, newest first. From a person's entries, the page's entries are
    picked first, then only their event rows are read."""

    def cut(select: sa.Select[Any]) -> sa.Select[Any]:
        select = select.limit(sa.bindparam("limit", type_=sa.Integer))
        return select.offset(sa.bindparam("offset", type_=sa.BigInteger)) if paged else select

    if rows.source is events:
        return cut(rows.newest_first(events)).subquery()
    # Both ordering columns are selected: SQLite then reads the two tables' keys backwards,
    # merged, and stops at the page's end, instead of sorting all of the person's entries.
    picked = cut(rows.newest_first(rows.timestamp.label("timestamp"), rows.seq.label("seq")))
    picked = picked.subquery()
    return (
        sa.select(events)
        .join(picked, events.c.seq == picked.c.seq)
        .order_by(*_NEWEST_FIRST)
        .subquery()
    )


@functools.lru_cache(maxsize=256)
def _timeline_statement(dialect: str, given: tuple[str, ...]) -> sa.Select[Any]:
    """Built once per dialect and set of filters: building a statement this size costs more
    Python than running it."""
    rows = _rows(dialect, given)
    page = _page(rows, paged=True)
    total = sa.select(sa.func.count()).select_from(rows.source).where(*rows.where).scalar_subquery()
    live = people_store.live_id_sql()
    return sa.select(_json_page(dialect, page), total, live).select_from(page)


@functools.lru_cache(maxsize=256)
def _recent_statement(dialect: str, given: tuple[str, ...]) -> sa.Select[Any]:
    rows = _rows(dialect, given)
    page = _page(rows, paged=False)
    # The page's last row and whether one follows it: the next page starts after that row.
    matching = rows.newest_first(rows.timestamp.label("timestamp"), rows.seq.label("seq"))
    last = matching.offset(sa.bindparam("last_offset", type_=sa.Integer)).limit(1).subquery()
    following = matching.offset(sa.bindparam("limit", type_=sa.Integer)).limit(1).subquery()
    return sa.select(
        _json_page(dialect, page),
        sa.select(last.c.timestamp).scalar_subquery(),
        sa.select(last.c.seq).scalar_subquery(),
        sa.exists(following.select()),
    ).select_from(page)


def person_events(
    conn: sa.Connection,
    *,
    workspace_id: str,
    person_id: str,
    event: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    offset: int,
) -> tuple[orjson.Fragment, int] | None:
    """A page of one person's timeline (a JSON array) and the total count matching the
    filters, in one statement; None when ``person_id`` names no person, live or merged."""
    params: dict[str, object] = {
        "workspace_id": workspace_id,
        "person_id": person_id,
        "event": event,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
    }
    statement = _timeline_statement(conn.dialect.name, _given(params))
    text, total, live = conn.execute(statement, params).one()
    return None if live is None else (orjson.Fragment(text), int(total))


def recent_events(
    conn: sa.Connection,
    *,
    workspace_id: str,
    user_id: str | None,
    device_id: str | None,
    event: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    cursor: str | None,
) -> tuple[orjson.Fragment, str | None]:
    """A page of the workspace's events (a JSON array), newest first, and the cursor of the
    next page, in one statement. ``user_id``: the events of that user's person (none when
    the user is unknown)."""
    params: dict[str, object] = {
        "workspace_id": workspace_id,
        "user_id": user_id,
        "device_id": device_id,
        "event": event,
        "since": since,
        "until": until,
        "limit": limit,
        "last_offset": limit - 1,
    }
    if cursor is not None:
        params["cursor_ts"], params["cursor_seq"] = decode_cursor(cursor)
    statement = _recent_statement(conn.dialect.name, _given(params))
    text, last_ts, last_seq, more = conn.execute(statement, params).one()
    return orjson.Fragment(text), encode_cursor(last_ts, last_seq) if more else None


def encode_cursor(*parts: int) -> str:
    return base64.urlsafe_b64encode(":".join(map(str, parts)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int = 2) -> tuple[int, ...]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        values = tuple(int(p) for p in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = ()
    if len(values) != parts or not all(0 <= v < 2**63 for v in values):
        raise InvalidInput(
            "the cursor is not one this server gave", field="cursor", code="invalid_cursor"
        )
    return values
