"""PostgreSQL: person timelines back in an index on events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PERSON_INDEX = "ix_events_workspace_id_person_id_timestamp"
_COLUMNS = "workspace_id, person_id, timestamp, seq"


def upgrade() -> None:
    """SQLite keeps its timeline tables. PostgreSQL stops filling them, empties them and
    indexes ``events`` by person instead."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER events_timeline ON events")
    op.execute("DROP FUNCTION events_timeline()")
    op.execute("DELETE FROM timeline_recent")
    op.execute("DELETE FROM timeline")
    op.create_index(_PERSON_INDEX, "events", ["workspace_id", "person_id", "timestamp"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_PERSON_INDEX, table_name="events")
    op.execute(
        f"INSERT INTO timeline ({_COLUMNS}) SELECT {_COLUMNS} FROM events ORDER BY {_COLUMNS}"
    )
    op.execute(
        "CREATE FUNCTION events_timeline() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" INSERT INTO timeline_recent ({_COLUMNS}) SELECT {_COLUMNS} FROM stored;"
        " RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER events_timeline AFTER INSERT ON events REFERENCING NEW TABLE AS stored"
        " FOR EACH STATEMENT EXECUTE FUNCTION events_timeline()"
    )
