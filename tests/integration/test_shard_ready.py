"""Contract section 9, shard-ready: every SQL statement the service issues over a walk through both
APIs is recorded (SQLAlchemy's `before_cursor_execute`), and each must be routable to the one shard of
one user: a statement on a table sharded by user names that user in its WHERE clause (or inserts a
row of that user), and no transaction touches two users. The one global lookup allowed is the user's
email (registration's uniqueness check and login), which a sharded deployment serves from a unique
lookup table (Vitess: a `consistent_lookup_unique` vindex on users.email; TiDB: the unique index).

A new route is walked by adding one line to WALK; a new table says how it is sharded in SHARDED_BY.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from entrypoints.http.openapi import documented_methods
from tests.conftest import migrate_to
from tests.http_client import in_process_client

# The column that names a row's user, per table sharded by user.
SHARDED_BY = {"users": "id", "posts": "user_id", "sessions": "user_id"}
# Lookups by a globally unique value, routed through a lookup table when sharded.
GLOBAL_LOOKUPS = {("users", "email")}
# Tables that are not about one user (alembic's own).
UNSHARDED = {"alembic_version"}

PASSWORD = "correct horse battery"
TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+[`\"]?(\w+)", re.IGNORECASE)
PARAMETER = re.compile(r"\?|%s")


@attrs.frozen
class Step:
    """One request of the walk, as `user`. `url` may name `{token}`, `{post}`, `{next}` and
    `{session}` of that user (their token, last post id, next page, a session of theirs other than
    the current one); `body` builds the JSON body from their state."""

    user: str
    method: str
    url: str
    body: Callable[[dict[str, Any]], Any] | None = None
    form: bool = False
    bearer: bool = True
    status: int = 200


def credentials(name: str, field: str = "email") -> Callable[[dict[str, Any]], Any]:
    return lambda _me: {field: f"{name}@example.com", "password": PASSWORD}


WALK = [
    Step("alice", "POST", "/api/v1/users/register", credentials("alice"), bearer=False, status=201),
    Step("bob", "POST", "/api/v1/users/register", credentials("bob"), bearer=False, status=201),
    Step("alice", "POST", "/api/v1/users/login", credentials("alice"), bearer=False),
    Step("alice", "POST", "/api/v1/users/login", credentials("alice", "username"), form=True, bearer=False),
    Step("alice", "POST", "/api/v1/posts/add-post", lambda _me: {"text": "one"}),
    Step("alice", "POST", "/api/v1/posts/add-post", lambda _me: {"text": "two"}),
    Step("alice", "POST", "/api/v1/posts/add-post", lambda _me: {"text": "three"}),
    Step("bob", "POST", "/api/v1/posts/add-post", lambda _me: {"text": "bob's"}),
    Step("alice", "GET", "/api/v1/posts/get-posts"),
    Step("alice", "GET", "/api/v1/posts/get-posts?limit=2"),
    Step("alice", "GET", "{next}"),
    Step("bob", "DELETE", "/api/v1/posts/delete-post/{alice_post}", status=404),
    Step("alice", "DELETE", "/api/v1/posts/delete-post/{post}", status=204),
    Step("alice", "GET", "/api/v1/posts/get-posts?limit=1"),
    Step("carol", "POST", "/auth/register", credentials("carol"), bearer=False, status=201),
    Step("carol", "POST", "/auth/login", credentials("carol", "username"), form=True, bearer=False),
    Step("carol", "POST", "/posts/AddPost?token={token}", lambda _me: {"Post_Text": "carol's"}, bearer=False),
    Step("carol", "GET", "/posts/GetPosts?token={token}", bearer=False),
    Step(
        "carol", "POST", "/posts/DeletePost?token={token}", lambda me: {"Post_ID": me["post"]}, bearer=False
    ),
    Step("alice", "POST", "/api/v1/users/refresh", lambda me: {"refresh_token": me["refresh"]}, bearer=False),
    Step("alice", "GET", "/api/v1/users/me"),
    Step("alice", "GET", "/api/v1/users/me/sessions"),
    Step("alice", "DELETE", "/api/v1/users/me/sessions/{session}", status=204),
    Step(
        "alice",
        "PUT",
        "/api/v1/users/me/password",
        lambda _me: {"current_password": PASSWORD, "new_password": "another horse battery"},
        status=204,
    ),
    Step("bob", "POST", "/api/v1/users/logout", status=204),
    Step("dave", "POST", "/api/v1/users/register", credentials("dave"), bearer=False, status=201),
    Step("dave", "DELETE", "/api/v1/users/me/sessions", status=204),
    Step("erin", "POST", "/api/v1/users/register", credentials("erin"), bearer=False, status=201),
    Step("erin", "DELETE", "/api/v1/users/me", lambda _me: {"password": PASSWORD}, status=204),
]


@attrs.frozen
class Statement:
    step: int
    transaction: int
    sql: str
    parameters: tuple[Any, ...]


class Recorder:
    """Every statement an engine sends, with the step of the walk and the transaction it belongs to."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[Statement] = []
        self.step = -1
        self._transactions: dict[int, int] = {}
        self._begun = 0
        event.listen(engine.sync_engine, "begin", self._begin)
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _begin(self, connection: Connection) -> None:
        self._begun += 1
        self._transactions[id(connection)] = self._begun

    def _record(
        self,
        connection: Connection,
        _cursor: Any,
        sql: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        transaction = self._transactions.get(id(connection), 0)
        self.statements.append(Statement(self.step, transaction, sql, tuple(parameters or ())))


@attrs.frozen
class Route:
    """How one statement reaches its shard: by `user` (an id; None for a user being created) or
    through the global lookup named `lookup`."""

    user: int | None = None
    lookup: str | None = None


class NotShardReady(Exception):
    pass


def _bound(statement: Statement, position: int) -> Any:
    return statement.parameters[len(PARAMETER.findall(statement.sql[:position]))]


def _top_level_items(values: str) -> list[str]:
    """`a, f(b, c), ?` -> ["a", "f(b, c)", "?"]."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(values):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(values[start:index])
            start = index + 1
    return [*items, values[start:]]


def route_of(statement: Statement, table: str) -> Route:
    """Raises NotShardReady when the statement cannot be sent to one user's shard."""
    sql = statement.sql
    column = SHARDED_BY[table]
    insert = re.match(
        rf"\s*INSERT INTO [`\"]?{table}[`\"]? \(([^)]*)\) VALUES \((.*)\)\s*$",  # noqa: S608 - a pattern
        sql,
        re.IGNORECASE | re.DOTALL,
    )
    if insert is not None:
        columns = [name.strip(' `"') for name in insert.group(1).split(",")]
        values = _top_level_items(insert.group(2))
        if column in columns:
            value = values[columns.index(column)].strip()
            if not PARAMETER.fullmatch(value):
                raise NotShardReady(f"an insert into {table} whose {column} is not a bound value")
            before = sum(len(PARAMETER.findall(item)) for item in values[: columns.index(column)])
            return Route(user=statement.parameters[before])
        if column == "id":
            return Route(user=None)  # a new row of the sharded table: its id, and shard, are chosen now
        raise NotShardReady(f"an insert into {table} without {column}")
    by_user = re.search(rf"\b{table}\.{column} = (?:\?|%s)", sql)
    if by_user is not None:
        return Route(user=_bound(statement, by_user.end() - 1))
    for lookup_table, lookup_column in GLOBAL_LOOKUPS:
        if lookup_table == table and re.search(rf"\b{table}\.{lookup_column} = (?:\?|%s)", sql):
            return Route(lookup=f"{table}.{lookup_column}")
    raise NotShardReady(f"a statement on {table} that does not constrain {table}.{column}")


def routes(statement: Statement) -> list[Route]:
    found = []
    for table in dict.fromkeys(TABLE.findall(statement.sql)):
        if table in UNSHARDED:
            continue
        if table not in SHARDED_BY:
            raise NotShardReady(f"table {table} is neither in SHARDED_BY nor in UNSHARDED")
        found.append(route_of(statement, table))
    return found


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'walk.db'}"
        migrate_to(url)
        return url
    mysql_url: str = request.getfixturevalue("mysql_url")
    return mysql_url


@pytest.fixture
async def service(make_container: Callable[..., Container], database_url: str) -> AsyncIterator[Container]:
    container = make_container(database_url=database_url)
    yield container
    await close(container)


def api_routes(container: Container) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, method in documented_methods(create_app(container).routes)
        if path.startswith(("/api/", "/auth/", "/posts/"))
    }


def route_template(routes: set[tuple[str, str]], method: str, url: str) -> tuple[str, str]:
    path = httpx.URL(url).path
    for template, template_method in routes:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if template_method == method and re.fullmatch(pattern, path):
            return template, method
    raise AssertionError(f"{method} {url} is no documented route")


async def walk(container: Container, recorder: Recorder) -> dict[str, dict[str, Any]]:
    """Runs WALK; returns each user's state (id, token, last post, next page)."""
    state: dict[str, dict[str, Any]] = defaultdict(dict)
    async with in_process_client(container, close_container=False) as http:
        for index, step in enumerate(WALK):
            me = state[step.user]
            values = {f"{name}_post": other.get("post") for name, other in state.items()}
            url = step.url.format(
                token=me.get("token"),
                post=me.get("post"),
                next=me.get("next"),
                session=me.get("session"),
                **values,
            )
            body = None if step.body is None else step.body(me)
            headers = {"Authorization": f"Bearer {me['token']}"} if step.bearer else {}
            recorder.step = index
            answer = await http.request(
                step.method,
                url,
                headers=headers,
                json=None if step.form else body,
                data=body if step.form else None,
            )
            recorder.step = -1
            assert answer.status_code == step.status, (step, answer.text)
            found = answer.json() if answer.content else {}
            if isinstance(found, dict):
                me.setdefault("id", found.get("id"))
                me["token"] = found.get("access_token", me.get("token"))
                me["post"] = found.get("PostID", found.get("Post_ID", me.get("post")))
                me["refresh"] = found.get("refresh_token", me.get("refresh"))
            elif isinstance(found, list):
                others = [
                    item["id"] for item in found if isinstance(item, dict) and item.get("current") is False
                ]
                me["session"] = others[0] if others else me.get("session")
            link = re.match(r"<([^>]+)>", answer.headers.get("link", ""))
            me["next"] = link.group(1) if link else None
    return state


def check(statements: Sequence[Statement], state: dict[str, dict[str, Any]]) -> tuple[list[str], str]:
    """The problems found, and a report: each distinct statement, how often, and how it is routed."""
    problems: list[str] = []
    users_of_transaction: dict[int, set[int]] = defaultdict(set)
    report: dict[str, tuple[int, str]] = {}
    for statement in statements:
        acting = state[WALK[statement.step].user]["id"] if statement.step >= 0 else None
        try:
            found = routes(statement)
        except NotShardReady as exc:
            problems.append(f"{exc}: {statement.sql}")
            continue
        if re.search(r"ORDER BY\s+[`\"]?\w+[`\"]?\.[`\"]?id[`\"]?\b", statement.sql, re.IGNORECASE):
            problems.append(f"orders by id first, but ids need not be ordered: {statement.sql}")
        for route in found:
            if route.user is None:
                continue
            users_of_transaction[statement.transaction].add(route.user)
            if acting is not None and route.user != acting:
                problems.append(f"step {statement.step} touched user {route.user}: {statement.sql}")
        how = ", ".join(
            "by user"
            if route.lookup is None and route.user is not None
            else "new user"
            if route.lookup is None
            else f"lookup {route.lookup}"
            for route in found
        )
        sql = " ".join(statement.sql.split())
        report[sql] = (report.get(sql, (0, ""))[0] + 1, how or "no table")
    for transaction, users in users_of_transaction.items():
        if len(users) > 1:
            problems.append(f"transaction {transaction} touches users {sorted(users)}")
    lines = [f"{count:4d}  {how:<22} {sql}" for sql, (count, how) in report.items()]
    return problems, "\n".join(lines)


async def test_every_statement_of_a_walk_through_both_apis_stays_on_one_users_shard(
    service: Container, tmp_path: Path
) -> None:
    engine = service.infrastructure().engine
    assert engine is not None
    recorder = Recorder(engine)

    state = await walk(service, recorder)

    problems, report = check(recorder.statements, state)
    (tmp_path / "statements.txt").write_text(report)
    print(f"\n{len(recorder.statements)} statements over {len(WALK)} requests:\n{report}")
    assert not problems, "\n".join(problems)
    assert sum(1 for statement in recorder.statements if routes(statement)) >= len(WALK)


def test_the_walk_covers_every_api_route(make_container: Callable[..., Container]) -> None:
    container = make_container()
    documented = api_routes(container)
    # `{next}` follows a Link header of the step before it: a route walked already.
    walked = {
        route_template(documented, step.method, step.url.split("?")[0])
        for step in WALK
        if not step.url.startswith("{")
    }
    assert documented - walked == set(), "add a Step to WALK for each new route"


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        ("SELECT posts.id FROM posts WHERE posts.id = ?", (1,)),
        ("DELETE FROM posts WHERE posts.id = ?", (1,)),
        ("SELECT users.id FROM users", ()),
        ("INSERT INTO posts (text, created_at) VALUES (?, ?)", ("x", "t")),
        ("SELECT count(*) FROM quotas WHERE quotas.user_id = ?", (1,)),
        ("INSERT INTO posts (user_id, text) VALUES ((SELECT max(users.id) FROM users), ?)", ("x",)),
    ],
)
def test_statements_that_do_not_name_their_user_are_refused(sql: str, parameters: tuple[Any, ...]) -> None:
    with pytest.raises(NotShardReady):
        routes(Statement(0, 1, sql, parameters))


def test_an_insert_is_routed_by_the_user_it_inserts_for() -> None:
    statement = Statement(
        0, 1, "INSERT INTO posts (text, user_id, created_at) VALUES (%s, %s, sysdate(6))", ("x", 7)
    )
    assert routes(statement) == [Route(user=7)]
    assert routes(Statement(0, 1, "INSERT INTO users (email) VALUES (?)", ("a@b.c",))) == [Route(user=None)]


def test_a_statement_is_routed_by_the_user_it_names() -> None:
    statement = Statement(
        0, 1, "SELECT posts.id FROM posts WHERE posts.created_at > %s AND posts.user_id = %s", ("t", 7)
    )
    assert routes(statement) == [Route(user=7)]
    assert routes(Statement(0, 1, "SELECT users.id FROM users WHERE users.email = ?", ("a@b.c",))) == [
        Route(lookup="users.email")
    ]


def test_a_transaction_that_touches_two_users_is_refused() -> None:
    statements = [
        Statement(-1, 5, "DELETE FROM posts WHERE posts.id = ? AND posts.user_id = ?", (1, 7)),
        Statement(-1, 5, "UPDATE users SET post_count=? WHERE users.id = ?", (0, 8)),
        Statement(-1, 6, "SELECT users.id FROM users WHERE users.id = ?", (8,)),
    ]
    problems, _ = check(statements, {})
    assert problems == ["transaction 5 touches users [7, 8]"]
