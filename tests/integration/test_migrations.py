"""The migrations, on SQLite and MySQL/MariaDB: every revision goes up, down and up again, and the
schema they build is the one the persistence adapter's tables describe."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from adapters.sqlalchemy.engine import EngineOptions, create_engine
from adapters.sqlalchemy.tables import metadata
from entrypoints.cli import alembic_config
from tests.conftest import migrate_to
from tests.mysql_redis import run_sync


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_mysql_database")
    return make()


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("unused://"))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def downgrade(url: str, revision: str) -> None:
    run_sync_thread(lambda: command.downgrade(alembic_config(url), revision))


def run_sync_thread(work: Callable[[], None]) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(work).result()


def inspect_database(url: str, look: Callable[[Connection], Any]) -> Any:
    async def work() -> Any:
        engine = create_engine(url, EngineOptions(pool_size=1, max_overflow=0))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(look)
        finally:
            await engine.dispose()

    return run_sync(work)


def table_names(url: str) -> set[str]:
    names: set[str] = inspect_database(url, lambda connection: set(inspect(connection).get_table_names()))
    return names


def test_each_revision_upgrades_downgrades_and_upgrades_again(empty_database: str) -> None:
    previous = "base"
    for revision in revisions():
        migrate_to(empty_database, revision)
        downgrade(empty_database, previous)
        migrate_to(empty_database, revision)
        previous = revision
    assert table_names(empty_database) >= {"users", "posts", "alembic_version"}
    downgrade(empty_database, "base")
    assert table_names(empty_database) == {"alembic_version"}


def test_the_migrated_schema_matches_the_tables_of_the_adapter(empty_database: str) -> None:
    migrate_to(empty_database)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert inspect_database(empty_database, differences) == []


@pytest.mark.mysql
def test_mysql_columns_hold_a_mebibyte_of_emoji_and_compare_emails_byte_for_byte(
    make_mysql_database: Callable[[], str],
) -> None:
    url = make_mysql_database()
    migrate_to(url)

    def columns(connection: Connection) -> dict[str, tuple[str, str, str]]:
        rows = connection.execute(
            text(
                "SELECT CONCAT(table_name, '.', column_name), column_type, character_set_name, "
                "collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND column_name IN ('text', 'email')"
            )
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}

    assert inspect_database(url, columns) == {
        "posts.text": ("mediumtext", "utf8mb4", "utf8mb4_bin"),
        "users.email": ("varchar(320)", "utf8mb4", "utf8mb4_bin"),
    }

    def posts_indexes(connection: Connection) -> list[Any]:
        return [index["column_names"] for index in inspect(connection).get_indexes("posts")]

    assert ["user_id", "created_at", "id"] in inspect_database(url, posts_indexes)


def test_the_quota_migration_counts_the_posts_and_bytes_users_already_hold(empty_database: str) -> None:
    before_quotas = (
        ScriptDirectory.from_config(alembic_config("unused://")).get_revision("0004").down_revision
    )
    assert isinstance(before_quotas, str)
    migrate_to(empty_database, before_quotas)

    def fill(connection: Connection) -> None:
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES "
                "(1, 'a@example.com', 'h', '2026-11-20 00:00:00'), "
                "(2, 'b@example.com', 'h', '2026-11-20 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO posts (user_id, text, created_at) VALUES "
                "(1, 'abc', '2026-11-20 00:00:00'), (1, :emoji, '2026-11-20 00:00:00')"
            ),
            {"emoji": "😀é"},
        )
        connection.commit()

    inspect_database(empty_database, fill)
    migrate_to(empty_database)

    def counts(connection: Connection) -> list[Any]:
        rows = connection.execute(text("SELECT id, post_count, post_bytes FROM users ORDER BY id"))
        return [tuple(row) for row in rows]

    assert inspect_database(empty_database, counts) == [(1, 2, 3 + 6), (2, 0, 0)]
