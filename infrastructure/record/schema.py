"""The record's tables (SQLAlchemy Core). Alembic's migrations (``migrations/versions``)
create them; this module is what the code queries with, and a test checks the two agree.

Times are epoch milliseconds (``BIGINT``), as Redis keeps them: no time zone questions,
and the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: SQLite autoincrements only ``INTEGER PRIMARY KEY``.
_RowId = BigInteger().with_variant(Integer(), "sqlite")

#: One row per conversation: the latest state, for listing and filtering.
sessions = Table(
    "record_sessions",
    metadata,
    Column("session_name", String(64), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    #: The latest entry's time: conversations are listed newest first by it.
    Column("last_at", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    #: Sort key of the entry that set ``status`` (entries may be applied out of order
    #: after a claim): only a later one replaces it.
    Column("status_key", String(48), nullable=False),
    #: The holder as of the latest status change, else the agent who held it last.
    Column("agent_id", String(64)),
    Column("message_count", Integer, nullable=False),
    Column("rating_score", Integer),
    Column("rating_comment", Text),
    Column("rated_at", BigInteger),
    Index("ix_record_sessions_last", "last_at", "session_name"),
)

#: Every record stream entry applied: the archiver's idempotency key.
entries = Table(
    "record_entries",
    metadata,
    Column("entry_id", String(48), primary_key=True),
    Column("session_name", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("ts", BigInteger, nullable=False),
)

status_changes = Table(
    "record_status_changes",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("entry_id", String(48), nullable=False, unique=True),
    Column("session_name", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    #: The entry's place in the record stream (sortable text): the order Redis accepted.
    Column("position", String(48), nullable=False),
    Column("status", String(32), nullable=False),
    Column("previous", String(32)),
    Column("agent_id", String(64)),
    Column("reason", Text),
    Index("ix_record_status_session", "session_name", "position"),
    Index("ix_record_status_ts", "ts"),
    Index("ix_record_status_agent", "agent_id", "status"),
)

messages = Table(
    "record_messages",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("entry_id", String(48), nullable=False, unique=True),
    Column("session_name", String(64), nullable=False),
    #: The transcript stream id: unique in its session, as in Redis.
    Column("message_id", String(48), nullable=False),
    Column("ts", BigInteger, nullable=False),
    #: As in ``record_status_changes``: transcripts are in this order.
    Column("position", String(48), nullable=False),
    Column("sender", String(16), nullable=False),
    Column("sender_id", String(64)),
    Column("content", Text, nullable=False),
    #: A file's message: the file (JSON: id, filename, content_type, size, thumbnail).
    Column("attachment", Text),
    UniqueConstraint("session_name", "message_id", name="uq_record_messages_session_message"),
    Index("ix_record_messages_session", "session_name", "position"),
)

agents = Table(
    "record_agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("first_seen_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
)

#: A customer's data erased at ``erased_at``: entries of that session up to then that
#: reach the archiver late (read before the erasure, committed after) are dropped.
erasures = Table(
    "record_erasures",
    metadata,
    Column("session_name", String(64), primary_key=True),
    Column("erased_at", BigInteger, nullable=False),
)

#: The full-text index of message content (created by the migration, per dialect):
#: SQLite FTS5 with the ``trigram`` tokenizer (substrings, so Chinese is found without a
#: word splitter), PostgreSQL pg_trgm (a GIN index that ``ILIKE '%...%'`` uses).
SQLITE_FTS_TABLE = "record_messages_fts"
PG_TRGM_INDEX = "ix_record_messages_content_trgm"


#: Canned replies of the team: ``/shortcut`` in the reply box inserts ``content``.
canned_replies = Table(
    "canned_replies",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("shortcut", String(32), nullable=False, unique=True),
    Column("content", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)


#: Agents' internal notes, kept apart from the messages so that nothing a customer reads
#: (its transcript, its export) can include one.
notes = Table(
    "record_notes",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("entry_id", String(48), nullable=False, unique=True),
    Column("session_name", String(64), nullable=False, index=True),
    Column("note_id", String(48), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("agent_id", String(64), nullable=False),
    Column("content", Text, nullable=False),
    UniqueConstraint("session_name", "note_id", name="uq_record_notes_note"),
)
