"""PostgreSQL: person timelines in an index on events, whatever 0004 did

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


def upgrade() -> None:
    """0004 now leaves PostgreSQL's index on ``events`` alone, but an earlier 0004 replaced it
    with the two timeline tables and a trigger filling them: undo that. SQLite: nothing."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS events_timeline ON events")
    op.execute("DROP FUNCTION IF EXISTS events_timeline()")
    op.execute("TRUNCATE timeline, timeline_recent")
    op.create_index(
        _PERSON_INDEX, "events", ["workspace_id", "person_id", "timestamp"], if_not_exists=True
    )


def downgrade() -> None:
    """0004's PostgreSQL schema is this one: nothing to undo."""
