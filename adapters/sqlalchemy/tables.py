"""The schema, shared by the repositories and the alembic migrations."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    cast,
    func,
)
from sqlalchemy.dialects import mysql

from domain.sessions import Session
from domain.users import Email

# Named constraints, so that migrations can drop them and errors can be told apart by name.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; both are 64-bit.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Microseconds, stored as naive UTC.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# Binary collation: equal only when byte-identical, so `josé@x` and `jose@x` stay two accounts.
# Emails are lower-cased before they get here.
EmailColumn = String(Email.MAX_LENGTH).with_variant(
    mysql.VARCHAR(Email.MAX_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
# Session ids and refresh token hashes are ASCII.
SessionIdColumn = String(Session.ID_MAX_LENGTH)
TokenHashColumn = String(64)
# Up to 16 MiB of UTF-8, emoji included: room for the 1 MiB post limit.
PostTextColumn = Text().with_variant(
    mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)

_table_options: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    # Never hand a deleted row's id to a new row.
    "sqlite_autoincrement": True,
}

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", EmailColumn, nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # What the user holds, kept with every add and delete: quotas are checked against these by the
    # same conditional UPDATE that counts a new post, in the insert's transaction.
    Column("post_count", BigInteger, nullable=False, server_default="0"),
    Column("post_bytes", BigInteger, nullable=False, server_default="0"),
    **_table_options,
)

posts = Table(
    "posts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("text", PostTextColumn, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # Serves "posts of a user, oldest first" (and pages of it) and the foreign key.
    Index(None, "user_id", "created_at", "id"),
    **_table_options,
)


def text_bytes(text: ColumnElement[str]) -> ColumnElement[int]:
    """The UTF-8 size of a text column, counted by the database (SQLite's length() counts characters
    of a text, bytes of a blob; MySQL's counts bytes)."""
    return func.length(cast(text, LargeBinary))


# One row per session; a refresh rotates the row in place (a new hash, the next generation), so a
# token of an earlier generation is known to be used. Ended rows stay until their user is deleted.
sessions = Table(
    "sessions",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("id", SessionIdColumn, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_used_at", Timestamp, nullable=False),
    Column("refresh_hash", TokenHashColumn, nullable=False),
    Column("refresh_generation", BigInteger, nullable=False),
    Column("refresh_expires_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp, nullable=True),
    # The user first: every statement names the user, and a user's sessions sit together.
    PrimaryKeyConstraint("user_id", "id"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)
