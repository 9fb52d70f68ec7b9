"""The record: sessions, status changes, messages (with a full-text index), agents.

Revision ID: 0001_record
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_record"
down_revision = None
branch_labels = None
depends_on = None

_RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_sessions",
        sa.Column("session_name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_key", sa.String(48), nullable=False),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("rating_score", sa.Integer),
        sa.Column("rating_comment", sa.Text),
        sa.Column("rated_at", sa.BigInteger),
    )
    op.create_index("ix_record_sessions_last", "record_sessions", ["last_at", "session_name"])
    op.create_table(
        "record_entries",
        sa.Column("entry_id", sa.String(48), primary_key=True),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_record_entries_session_name", "record_entries", ["session_name"])
    op.create_table(
        "record_status_changes",
        sa.Column("id", _RowId, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(48), nullable=False, unique=True),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("position", sa.String(48), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("previous", sa.String(32)),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("reason", sa.Text),
    )
    op.create_index(
        "ix_record_status_session", "record_status_changes", ["session_name", "position"]
    )
    op.create_index("ix_record_status_ts", "record_status_changes", ["ts"])
    op.create_index("ix_record_status_agent", "record_status_changes", ["agent_id", "status"])
    op.create_table(
        "record_messages",
        sa.Column("id", _RowId, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.String(48), nullable=False, unique=True),
        sa.Column("session_name", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(48), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("position", sa.String(48), nullable=False),
        sa.Column("sender", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(64)),
        sa.Column("content", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "session_name", "message_id", name="uq_record_messages_session_message"
        ),
    )
    op.create_index("ix_record_messages_session", "record_messages", ["session_name", "position"])
    op.create_table(
        "record_agents",
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "record_erasures",
        sa.Column("session_name", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_record_messages_content_trgm ON record_messages "
            "USING gin (content gin_trgm_ops)"
        )
    else:
        # An external-content FTS5 table kept in step by triggers (messages are never
        # updated, only inserted and deleted).
        op.execute(
            "CREATE VIRTUAL TABLE record_messages_fts USING fts5("
            "content, content='record_messages', content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER record_messages_fts_ai AFTER INSERT ON record_messages BEGIN "
            "INSERT INTO record_messages_fts(rowid, content) VALUES (new.id, new.content); END"
        )
        op.execute(
            "CREATE TRIGGER record_messages_fts_ad AFTER DELETE ON record_messages BEGIN "
            "INSERT INTO record_messages_fts(record_messages_fts, rowid, content) "
            "VALUES ('delete', old.id, old.content); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_record_messages_content_trgm")
    else:
        op.execute("DROP TRIGGER IF EXISTS record_messages_fts_ad")
        op.execute("DROP TRIGGER IF EXISTS record_messages_fts_ai")
        op.execute("DROP TABLE IF EXISTS record_messages_fts")
    for table in (
        "record_erasures",
        "record_agents",
        "record_messages",
        "record_status_changes",
        "record_entries",
        "record_sessions",
    ):
        op.drop_table(table)
