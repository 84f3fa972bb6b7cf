"""Every table, as one SQLAlchemy Core metadata. Times are integer ms UTC. Every table carries
``workspace_id`` and every query filters on it, so the schema stays distributable by workspace."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def Str(length: int | None = None) -> sa.types.TypeEngine[str]:
    """A string (``VARCHAR(length)``, ``TEXT`` without one) compared byte by byte on both
    databases: ``COLLATE "C"`` on PostgreSQL, as SQLite's default ``BINARY`` already is. Ids,
    keys and names are not words to be ordered by a locale, and a locale's comparisons make
    every index insert dearer: ``COPY`` into ``events`` ran 5-7 % faster with ``C`` than with the
    database's ``C.UTF-8``, 28 % faster than with ICU's ``en-US`` (docs/benchmark.md, round 17)."""
    kind = sa.Text if length is None else sa.String
    return kind(length).with_variant(kind(length, collation="C"), "postgresql")


Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-increment, cheap appends).
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ms = sa.BigInteger

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("name", Str(200), nullable=False, unique=True),
    sa.Column("created_at", Ms, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("workspace_id", Str(32), sa.ForeignKey("workspaces.id"), nullable=False),
    sa.Column("name", Str(200), nullable=False),
    sa.Column("key_hash", Str(64), nullable=False, unique=True),
    sa.Column("prefix", Str(16), nullable=False),
    sa.Column("scopes", Str(200), nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Column("revoked_at", Ms, nullable=True),
    sa.Index(None, "workspace_id"),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("id", Str(36), primary_key=True),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Column("updated_at", Ms, nullable=False),
)

# A person is a cluster of identities: at most one ``user`` (external id), any ``device`` ids.
identities = sa.Table(
    "identities",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("kind", Str(8), primary_key=True),
    sa.Column("value", Str(255), primary_key=True),
    sa.Column("person_id", Str(36), nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Index(None, "workspace_id", "person_id"),
)

# Where a merged-away person went, so its old id still finds the survivor.
person_merges = sa.Table(
    "person_merges",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("merged_id", Str(36), primary_key=True),
    sa.Column("into_id", Str(36), nullable=False),
    sa.Column("merged_at", Ms, nullable=False),
    sa.Index(None, "workspace_id", "into_id"),
)

person_groups = sa.Table(
    "person_groups",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("person_id", Str(36), primary_key=True),
    sa.Column("group_id", Str(255), primary_key=True),
    sa.Column("created_at", Ms, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", Str(36), nullable=False),
    sa.Column("workspace_id", Str(32), nullable=False),
    sa.Column("person_id", Str(36), nullable=False),
    sa.Column("external_id", Str(255), nullable=True),
    sa.Column("device_id", Str(255), nullable=True),
    sa.Column("event", Str(200), nullable=False),
    sa.Column("parameters", Json, nullable=False),
    sa.Column("group_id", Str(255), nullable=True),
    sa.Column("context", Json, nullable=False),
    sa.Column("timestamp", Ms, nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Column("message_id", Str(255), nullable=True),
    sa.Index(None, "workspace_id", "message_id", unique=True),
    sa.Index(None, "workspace_id", "timestamp"),
    sa.Index(None, "workspace_id", "event", "timestamp"),
    # PostgreSQL: person timelines (``storage/timeline``); SQLite keeps them in tables below.
    sa.Index(None, "workspace_id", "person_id", "timestamp").ddl_if(dialect="postgresql"),
)


def _timeline_table(name: str) -> sa.Table:
    """A person timeline: one entry per event, keyed by person and time (``storage/timeline``).
    On SQLite the key is the table (``WITHOUT ROWID``), so an entry is stored once."""
    return sa.Table(
        name,
        metadata,
        sa.Column("workspace_id", Str(32), primary_key=True),
        sa.Column("person_id", Str(36), primary_key=True),
        sa.Column("timestamp", Ms, primary_key=True),
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )


# SQLite: each person's events, newest first, in two parts. A database trigger on ``events``
# adds every stored event to ``timeline_recent``, which stays small; the writer moves its
# entries into ``timeline`` every ``TRACKLINE_WRITER_TIMELINE_MOVE_EVENTS`` events, in key
# order, a slice after each commit. An index on ``events`` would rewrite one page per person in
# every commit (SQLite's WAL holds whole pages); the small table's pages are shared by many
# people, and a move writes each person's page of the large one once. PostgreSQL logs changed
# rows, not pages, so there the index on ``events`` is cheaper than entries inserted, deleted
# and inserted again; it keeps these two tables empty.
timeline = _timeline_table("timeline")
timeline_recent = _timeline_table("timeline_recent")

failed_events = sa.Table(
    "failed_events",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", Str(40), nullable=False, unique=True),
    sa.Column("workspace_id", Str(32), nullable=False),
    sa.Column("key_id", Str(32), nullable=True),
    sa.Column("source", Str(100), nullable=False),
    sa.Column("item_index", sa.Integer, nullable=True),
    sa.Column("code", Str(64), nullable=False),
    sa.Column("message", Str(), nullable=False),
    sa.Column("field", Str(300), nullable=True),
    sa.Column("payload", Str(), nullable=False),
    sa.Column("payload_truncated", sa.Boolean, nullable=False),
    sa.Column("external_id", Str(255), nullable=True),
    sa.Column("device_id", Str(255), nullable=True),
    sa.Column("received_at", Ms, nullable=False),
    sa.Index(None, "workspace_id", "received_at"),
    sa.Index(None, "workspace_id", "code", "received_at"),
    sa.Index(None, "workspace_id", "external_id"),
    sa.Index(None, "workspace_id", "device_id"),
)

# The catalog. Counters are kept per batch (one upsert per distinct name and property type).
event_definitions = sa.Table(
    "event_definitions",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("name", Str(200), primary_key=True),
    sa.Column("description", Str(), nullable=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_seen", Ms, nullable=True),
    sa.Column("last_seen", Ms, nullable=True),
    sa.Column("declared", sa.Boolean, nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Column("updated_at", Ms, nullable=False),
)

# Each type a property has been seen with: a property seen with two types has two rows.
event_property_types = sa.Table(
    "event_property_types",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("event", Str(200), primary_key=True),
    sa.Column("property", Str(255), primary_key=True),
    sa.Column("type", Str(16), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_seen", Ms, nullable=False),
    sa.Column("last_seen", Ms, nullable=False),
)

# Types declared ahead (User.com's event attributes): enforced at ingest.
property_declarations = sa.Table(
    "property_declarations",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("event", Str(200), primary_key=True),
    sa.Column("property", Str(255), primary_key=True),
    sa.Column("type", Str(16), nullable=False),
    sa.Column("description", Str(), nullable=True),
    sa.Column("updated_at", Ms, nullable=False),
)

# Groups (accounts, Segment's ``group`` call): their traits; members are in person_groups.
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("workspace_id", Str(32), primary_key=True),
    sa.Column("id", Str(255), primary_key=True),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("created_at", Ms, nullable=False),
    sa.Column("updated_at", Ms, nullable=False),
)
