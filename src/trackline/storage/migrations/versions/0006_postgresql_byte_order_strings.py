"""PostgreSQL: every string column compares byte by byte (COLLATE "C")

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = [
    "workspaces",
    "api_keys",
    "people",
    "identities",
    "person_merges",
    "person_groups",
    "groups",
    "events",
    "timeline",
    "timeline_recent",
    "failed_events",
    "event_definitions",
    "event_property_types",
    "property_declarations",
]


def upgrade() -> None:
    """Ids, keys and names get ``COLLATE "C"`` instead of the database's locale: the order
    SQLite gives them, and cheaper comparisons in every index insert. PostgreSQL rebuilds the
    indexes on these columns (not the tables); each table altered stays locked against reads
    and writes until the migration commits: minutes with a large ``events`` table. SQLite:
    nothing."""
    _collate('"C"', lambda collation: collation != "C")


def downgrade() -> None:
    _collate('"default"', lambda collation: collation == "C")


def _collate(collation: str, changes: Callable[[str], bool]) -> None:
    """Give ``collation`` to the string columns of ``_TABLES`` whose collation ``changes``."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    columns = bind.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, character_maximum_length,"
            " coalesce(collation_name, '') FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ANY(:tables)"
            " AND data_type IN ('character varying', 'text')"
            " ORDER BY table_name, ordinal_position"
        ),
        {"tables": _TABLES},
    ).all()
    by_table: dict[str, list[str]] = {}
    for table, column, kind, length, current in columns:
        if not changes(current):
            continue
        spelled = "text" if kind == "text" else "varchar" + (f"({length})" if length else "")
        by_table.setdefault(table, []).append(
            f"ALTER COLUMN {quote(column)} TYPE {spelled} COLLATE {collation}"
        )
    for table, alters in by_table.items():  # one statement: one pass over its indexes
        op.execute(f"ALTER TABLE {quote(table)} {', '.join(alters)}")
