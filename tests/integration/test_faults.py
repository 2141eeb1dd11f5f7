"""Faults injected by the tests themselves: a Redis of their own killed and frozen, a TCP proxy in
front of MariaDB cut and frozen, a client that hangs up mid-request. Timings are printed (run with
-s to see them) and bounded generously: "quickly" means seconds, never the driver's minutes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from tests.hexpost_servers import free_port
from tests.http_client import in_process_client
from tests.integration.faults import RedisProcess, TcpProxy

pytestmark = [pytest.mark.mysql, pytest.mark.redis]

# What the README promises, plus room for a shared, noisy machine: a database that fails answers
# 503 within 3 s; a Redis that fails costs a request at most its 0.5 s socket timeout.
MARGIN_SECONDS = 2.0
DATABASE_DOWN_SECONDS = 3.0 + MARGIN_SECONDS
REDIS_DOWN_SECONDS = 0.5 + MARGIN_SECONDS
# Recovery has no promised time: a bound that only a hang breaks.
RECOVERY_SECONDS = 10.0


@pytest.fixture
async def db_proxy(mysql_url: str) -> AsyncIterator[TcpProxy]:
    server = make_url(mysql_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 3306)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def make_service(
    make_container: Callable[..., Container],
    mysql_url: str,
    db_proxy: TcpProxy,
    own_redis: RedisProcess,
    redis_prefix: str,
) -> AsyncIterator[Callable[[], Container]]:
    """Containers wired like server processes: MariaDB through the proxy, the test's own Redis."""
    database_url = make_url(mysql_url).set(host="127.0.0.1", port=db_proxy.port)
    made: list[Container] = []

    def make() -> Container:
        made.append(
            make_container(
                database_url=database_url.render_as_string(hide_password=False),
                cache_url=own_redis.url,
                cache_key_prefix=redis_prefix,
            )
        )
        return made[-1]

    yield make
    for container in made:
        await close(container)


@pytest.fixture
def service(make_service: Callable[[], Container]) -> Container:
    return make_service()


@pytest.fixture
async def client(service: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(service, close_container=False) as http:
        http.timeout = httpx.Timeout(60)
        yield http


@pytest.fixture
async def other(make_service: Callable[[], Container]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of another process on the same database and Redis."""
    async with in_process_client(make_service(), base_url="http://b", close_container=False) as http:
        yield http


async def register(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await client.post("/api/v1/users/register", json={"email": email, "password": "correct horse"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = await call
    return answer, time.perf_counter() - started


async def get_posts(client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, list[str]]:
    answer = await client.get("/api/v1/posts/get-posts", headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-cache"], [post["text"] for post in answer.json()]


async def add(client: httpx.AsyncClient, auth: dict[str, str], text: str) -> int:
    answer = await client.post("/api/v1/posts/add-post", json={"text": text}, headers=auth)
    assert answer.status_code == 200, answer.text
    post_id: int = answer.json()["PostID"]
    return post_id


def checked_out(container: Container) -> int:
    engine = container.infrastructure().engine
    assert engine is not None
    count: int = engine.pool.checkedout()  # type: ignore[attr-defined]
    return count


async def eventually(check: Callable[[], Awaitable[bool]], within: float = RECOVERY_SECONDS) -> float:
    started = time.perf_counter()
    while not await check():
        assert time.perf_counter() - started < within, "condition not reached in time"
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def test_redis_down_serves_from_the_database_and_back_caches_again(
    client: httpx.AsyncClient, own_redis: RedisProcess
) -> None:
    auth = await register(client, "redis-down@example.com")
    first = await add(client, auth, "one")
    assert await get_posts(client, auth) == ("miss", ["one"])
    assert await get_posts(client, auth) == ("hit", ["one"])
    from_db = []
    for _ in range(10):
        await add(client, auth, "x")  # invalidates: the next read goes to the database
        from_db.append((await timed(client.get("/api/v1/posts/get-posts", headers=auth)))[1])

    own_redis.kill()
    down = []
    for _ in range(10):
        answer, elapsed = await timed(client.get("/api/v1/posts/get-posts", headers=auth))
        assert (answer.status_code, answer.headers["x-cache"]) == (200, "miss")
        assert elapsed < REDIS_DOWN_SECONDS
        down.append(elapsed)
    await add(client, auth, "two")
    deleted = await client.delete(f"/api/v1/posts/delete-post/{first}", headers=auth)
    assert deleted.status_code == 204
    assert (await get_posts(client, auth))[1][-1] == "two"
    assert "one" not in (await get_posts(client, auth))[1]
    print(
        f"\nget-posts from the database: median {median(from_db) * 1000:.1f} ms with Redis up, "
        f"{median(down) * 1000:.1f} ms with Redis down "
        f"(first {down[0] * 1000:.1f} ms, max {max(down) * 1000:.1f} ms)"
    )

    own_redis.start()
    await asyncio.sleep(1.1)  # the cache's cool-down after a failure
    cache, texts = await get_posts(client, auth)
    assert cache == "miss"
    assert "one" not in texts
    assert texts[-1] == "two"
    assert await get_posts(client, auth) == ("hit", texts)


async def test_a_write_while_redis_hangs_is_never_hidden_by_an_entry_from_before(
    client: httpx.AsyncClient,
    own_redis: RedisProcess,
    other: httpx.AsyncClient,
) -> None:
    auth = await register(client, "redis-frozen@example.com")
    await add(client, auth, "before")
    assert await get_posts(client, auth) == ("miss", ["before"])
    assert await get_posts(other, auth) == ("hit", ["before"])

    own_redis.freeze()  # Redis keeps its entries, and answers nothing
    try:
        answer, elapsed = await timed(
            client.post("/api/v1/posts/add-post", json={"text": "after"}, headers=auth)
        )
        assert answer.status_code == 200
        print(f"\nadd-post with Redis frozen: {elapsed * 1000:.0f} ms")
        assert elapsed < REDIS_DOWN_SECONDS
        await asyncio.sleep(1.1)  # past the cool-down: the next request tries Redis again
        first, first_elapsed = await timed(client.get("/api/v1/posts/get-posts", headers=auth))
        second, second_elapsed = await timed(client.get("/api/v1/posts/get-posts", headers=auth))
        for read in (first, second):
            assert read.status_code == 200
            assert [post["text"] for post in read.json()] == ["before", "after"]
        print(
            f"get-posts with Redis frozen: {first_elapsed * 1000:.0f} ms when it tries Redis, "
            f"{second_elapsed * 1000:.0f} ms during the cool-down"
        )
    finally:
        own_redis.thaw()

    async def replayed() -> bool:
        return (await get_posts(other, auth))[1] == ["before", "after"]

    # The writer sends its invalidation in the background, without waiting for its next request,
    # so the other process stops serving the entry from before the write.
    print(f"pending invalidation replayed {await eventually(replayed):.2f} s after Redis came back")
    assert (await get_posts(client, auth))[1] == ["before", "after"]


async def test_a_cut_database_answers_503_quickly_and_recovers_without_restart(
    client: httpx.AsyncClient, service: Container, db_proxy: TcpProxy
) -> None:
    auth = await register(client, "db-cut@example.com")
    await add(client, auth, "kept")
    await db_proxy.cut()
    for call in (
        client.post("/api/v1/posts/add-post", json={"text": "lost"}, headers=auth),
        client.post("/api/v1/users/register", json={"email": "new@example.com", "password": "correct horse"}),
    ):
        answer, elapsed = await timed(call)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert "detail" in answer.json()
        assert elapsed < DATABASE_DOWN_SECONDS
        print(f"\n503 with the database cut after {elapsed * 1000:.0f} ms")
    await db_proxy.restore()

    async def recovered() -> bool:
        answer = await client.post("/api/v1/posts/add-post", json={"text": "back"}, headers=auth)
        return answer.status_code == 200

    print(f"recovered {await eventually(recovered):.2f} s after the database came back")
    assert (await get_posts(client, auth))[1] == ["kept", "back"]
    assert checked_out(service) == 0


async def test_a_frozen_database_answers_503_quickly_and_recovers_without_restart(
    client: httpx.AsyncClient, service: Container, db_proxy: TcpProxy
) -> None:
    auth = await register(client, "db-frozen@example.com")
    await add(client, auth, "kept")
    db_proxy.freeze()
    answers = await asyncio.gather(
        *(timed(client.post("/api/v1/posts/add-post", json={"text": "lost"}, headers=auth)) for _ in range(3))
    )
    for answer, elapsed in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"].isdigit()
        assert elapsed < DATABASE_DOWN_SECONDS
    print(f"\n503 with the database frozen after {max(elapsed for _, elapsed in answers):.2f} s")
    await db_proxy.restore()

    async def recovered() -> bool:
        answer = await client.post("/api/v1/posts/add-post", json={"text": "back"}, headers=auth)
        return answer.status_code == 200

    print(f"recovered {await eventually(recovered):.2f} s after the database thawed")
    # Connections cut mid-query were thrown away, not handed out again.
    texts = (await get_posts(client, auth))[1]
    assert texts[0] == "kept"
    assert texts[-1] == "back"
    assert checked_out(service) == 0


@pytest.fixture
async def server(service: Container) -> AsyncIterator[int]:
    """The service behind a real HTTP server in this process, so a client can hang up on it."""
    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())

    async def started() -> bool:
        return running.started

    await eventually(started)
    yield port
    running.should_exit = True
    await task


async def hang_up_after_sending(port: int, request: bytes, wait: float) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    await asyncio.sleep(wait)
    writer.transport.abort()


async def test_clients_hanging_up_mid_request_leak_no_connections(
    client: httpx.AsyncClient, service: Container, db_proxy: TcpProxy, server: int
) -> None:
    auth = await register(client, "hangup@example.com")
    await add(client, auth, "one")
    token = auth["Authorization"]
    get = f"GET /api/v1/posts/get-posts HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n".encode()
    body = b'{"text": "' + b"a" * 500_000 + b'"}'
    half_post = (
        f"POST /api/v1/posts/add-post HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body[: len(body) // 2]
    assert checked_out(service) == 0

    # Hang-ups while the database answers, and while it hangs (requests stuck in a query).
    await asyncio.gather(*(hang_up_after_sending(server, get, 0.0) for _ in range(5)))
    await asyncio.gather(*(hang_up_after_sending(server, half_post, 0.05) for _ in range(3)))
    await add(client, auth, "two")  # invalidate, so the next reads go to the database
    db_proxy.freeze()
    await asyncio.gather(*(hang_up_after_sending(server, get, 0.3) for _ in range(5)))
    await db_proxy.restore()

    async def back_to_baseline() -> bool:
        return checked_out(service) == 0

    await eventually(back_to_baseline)
    assert (await get_posts(client, auth))[1] == ["one", "two"]
    assert checked_out(service) == 0
