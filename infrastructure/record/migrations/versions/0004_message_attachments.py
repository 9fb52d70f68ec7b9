"""A file's message keeps its file (attachments, issue 23).

Revision ID: 0004_message_attachments
Revises: 0003_notes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_message_attachments"
down_revision = "0003_notes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON text (id, filename, content_type, size, thumbnail); NULL for a plain message.
    op.add_column("record_messages", sa.Column("attachment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_messages") as batch:
        batch.drop_column("attachment")
