"""per-user post counts and bytes, for quotas

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy.tables import text_bytes

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("post_count", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("users", sa.Column("post_bytes", sa.BigInteger(), nullable=False, server_default="0"))
    users = sa.table("users", sa.column("id"), sa.column("post_count"), sa.column("post_bytes"))
    posts = sa.table("posts", sa.column("user_id"), sa.column("text", sa.Text()))
    owned = posts.c.user_id == users.c.id
    op.execute(
        users.update().values(
            post_count=sa.select(sa.func.count()).where(owned).scalar_subquery(),
            post_bytes=sa.select(sa.func.coalesce(sa.func.sum(text_bytes(posts.c.text)), 0))
            .where(owned)
            .scalar_subquery(),
        )
    )


def downgrade() -> None:
    op.drop_column("users", "post_bytes")
    op.drop_column("users", "post_count")
