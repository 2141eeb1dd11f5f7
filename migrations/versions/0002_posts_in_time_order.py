"""posts listed by (created_at, id)

Revision ID: 0002
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The new index first: MySQL refuses to drop the one the foreign key uses until another serves it.
    op.create_index("ix_posts_user_id_created_at_id", "posts", ["user_id", "created_at", "id"])
    op.drop_index("ix_posts_user_id_id", table_name="posts")


def downgrade() -> None:
    op.create_index("ix_posts_user_id_id", "posts", ["user_id", "id"])
    op.drop_index("ix_posts_user_id_created_at_id", table_name="posts")
