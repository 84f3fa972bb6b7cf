"""event catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "event_definitions",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=True),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("declared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "name", name=op.f("pk_event_definitions")),
    )
    op.create_table(
        "event_property_types",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("property", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "event", "property", "type", name=op.f("pk_event_property_types")
        ),
    )
    op.create_table(
        "property_declarations",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("property", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "event", "property", name=op.f("pk_property_declarations")
        ),
    )


def downgrade() -> None:

    op.drop_table("property_declarations")
    op.drop_table("event_property_types")
    op.drop_table("event_definitions")
