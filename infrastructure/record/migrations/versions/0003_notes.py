"""Agents' internal notes, apart from the messages.

Revision ID: 0003_notes
Revises: 0002_canned_replies
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_notes"
down_revision = "0002_canned_replies"
branch_labels = None
depends_on = None

_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_notes",
        sa.Column("id", _RowId, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(48), nullable=False, unique=True),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("note_id", sa.String(48), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.UniqueConstraint("session_name", "note_id", name="uq_record_notes_note"),
    )
    op.create_index("ix_record_notes_session_name", "record_notes", ["session_name"])


def downgrade() -> None:
    op.drop_index("ix_record_notes_session_name", "record_notes")
    op.drop_table("record_notes")
