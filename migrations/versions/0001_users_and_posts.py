"""users and posts

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy.tables import EmailColumn, Id, PostTextColumn, Timestamp

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_table_options: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "sqlite_autoincrement": True,
}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("email", EmailColumn, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        **_table_options,
    )
    op.create_table(
        "posts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("text", PostTextColumn, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_posts_user_id_users", ondelete="CASCADE"),
        # Created with the table, so MySQL uses it for the foreign key instead of adding its own.
        sa.Index("ix_posts_user_id_id", "user_id", "id"),
        **_table_options,
    )


def downgrade() -> None:
    # Dropping the table drops its index: MySQL refuses to drop an index a foreign key relies on.
    op.drop_table("posts")
    op.drop_table("users")
