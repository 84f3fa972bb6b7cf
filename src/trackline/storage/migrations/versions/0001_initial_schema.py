"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=255), nullable=True),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_event_timestamp"),
            ["workspace_id", "event", "timestamp"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_message_id"),
            ["workspace_id", "message_id"],
            unique=True,
        )
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_person_id_timestamp"),
            ["workspace_id", "person_id", "timestamp"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_timestamp"),
            ["workspace_id", "timestamp"],
            unique=False,
        )

    op.create_table(
        "failed_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=300), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_truncated", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_failed_events")),
        sa.UniqueConstraint("id", name=op.f("uq_failed_events_id")),
    )
    with op.batch_alter_table("failed_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_failed_events_workspace_id_code_received_at"),
            ["workspace_id", "code", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_failed_events_workspace_id_device_id"),
            ["workspace_id", "device_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_failed_events_workspace_id_external_id"),
            ["workspace_id", "external_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_failed_events_workspace_id_received_at"),
            ["workspace_id", "received_at"],
            unique=False,
        )

    op.create_table(
        "identities",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "kind", "value", name=op.f("pk_identities")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identities_workspace_id_person_id"),
            ["workspace_id", "person_id"],
            unique=False,
        )

    op.create_table(
        "people",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_people")),
    )
    op.create_table(
        "person_groups",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "person_id", "group_id", name=op.f("pk_person_groups")
        ),
    )
    op.create_table(
        "person_merges",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("merged_id", sa.String(length=36), nullable=False),
        sa.Column("into_id", sa.String(length=36), nullable=False),
        sa.Column("merged_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "merged_id", name=op.f("pk_person_merges")),
    )
    with op.batch_alter_table("person_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_merges_workspace_id_into_id"),
            ["workspace_id", "into_id"],
            unique=False,
        )

    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_api_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_keys_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_workspace_id"))

    op.drop_table("api_keys")
    op.drop_table("workspaces")
    with op.batch_alter_table("person_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_merges_workspace_id_into_id"))

    op.drop_table("person_merges")
    op.drop_table("person_groups")
    op.drop_table("people")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_workspace_id_person_id"))

    op.drop_table("identities")
    with op.batch_alter_table("failed_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_failed_events_workspace_id_received_at"))
        batch_op.drop_index(batch_op.f("ix_failed_events_workspace_id_external_id"))
        batch_op.drop_index(batch_op.f("ix_failed_events_workspace_id_device_id"))
        batch_op.drop_index(batch_op.f("ix_failed_events_workspace_id_code_received_at"))

    op.drop_table("failed_events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_timestamp"))
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_person_id_timestamp"))
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_message_id"))
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_event_timestamp"))

    op.drop_table("events")
