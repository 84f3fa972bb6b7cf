"""person timelines in their own tables (SQLite)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PERSON_INDEX = "ix_events_workspace_id_person_id_timestamp"
_COLUMNS = "workspace_id, person_id, timestamp, seq"
# Every stored event gets its timeline entry, whichever statement stores it. PostgreSQL keeps
# its index on ``events`` instead, and the two tables empty (``storage/timeline``).
_TRIGGER = (
    "CREATE TRIGGER events_timeline AFTER INSERT ON events BEGIN"
    f" INSERT INTO timeline_recent ({_COLUMNS})"
    " VALUES (NEW.workspace_id, NEW.person_id, NEW.timestamp, NEW.seq); END"
)


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "person_id", "timestamp", "seq", name=op.f(f"pk_{name}")
        ),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _create("timeline")
    _create("timeline_recent")
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index(_PERSON_INDEX, table_name="events")
    op.execute(
        f"INSERT INTO timeline ({_COLUMNS}) SELECT {_COLUMNS} FROM events ORDER BY {_COLUMNS}"
    )
    op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER events_timeline")
        op.create_index(_PERSON_INDEX, "events", ["workspace_id", "person_id", "timestamp"])
    op.drop_table("timeline_recent")
    op.drop_table("timeline")
