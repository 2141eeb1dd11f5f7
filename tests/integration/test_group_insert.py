"""A group of adds reaches SQLite and MySQL as one INSERT statement, whose compiled form SQLAlchemy
keeps: the next group of the same size is sent without compiling it again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.engine.interfaces import CacheStats

from adapters.clock import SystemClock
from adapters.sqlalchemy.engine import SqlUnitsOfWork
from domain.posts import NewPost, PostQuota, PostText
from domain.users import Email, NewUser
from entrypoints.bootstrap import open_store
from entrypoints.settings import Settings
from tests.conftest import migrate_to


@attrs.frozen
class Sent:
    rows: int
    compiled_from_cache: bool


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'group.db'}"
        migrate_to(url)
        return url
    mysql_url: str = request.getfixturevalue("mysql_url")
    return mysql_url


@pytest.fixture
async def store(database_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[SqlUnitsOfWork]:
    async with AsyncExitStack() as closing:
        store = open_store(make_settings(database_url=database_url), SystemClock(), closing)
        assert isinstance(store, SqlUnitsOfWork)
        yield store


async def test_a_group_of_adds_is_one_insert_compiled_once(store: SqlUnitsOfWork) -> None:
    sent: list[Sent] = []

    def record(
        _connection: Connection,
        _cursor: Any,
        sql: str,
        _parameters: Any,
        context: DefaultExecutionContext,
        _executemany: bool,
    ) -> None:
        if sql.lstrip().upper().startswith("INSERT INTO POSTS"):
            sent.append(Sent(sql.count("), (") + 1, context.cache_hit is CacheStats.CACHE_HIT))

    event.listen(store.engine.sync_engine, "after_cursor_execute", record)
    async with store() as work:
        owner = await work.users.add(NewUser(Email.parse("group@example.com"), "hash", datetime.now(UTC)))
        await work.commit()
    added: list[int] = []
    for group in (("a", "b", "c"), ("d", "e", "f"), ("g",)):
        async with store() as work:
            new_posts = [NewPost(owner.id, PostText(text)) for text in group]
            added += await work.posts.add_all(new_posts, PostQuota())
            await work.commit()

    assert [one.rows for one in sent] == [3, 3, 1]
    assert [one.compiled_from_cache for one in sent[:2]] == [False, True]
    async with store() as work:
        listed = await work.posts.list_by_owner(owner.id)
    assert [(post.id, post.text.value) for post in listed] == list(zip(added, "abcdefg", strict=True))
    assert added == sorted(added)
