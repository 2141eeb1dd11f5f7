"""One log line per request, with a request id that every response echoes; no secret in any log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from entrypoints.container import Container
from entrypoints.logs import configure_logging
from tests.http_client import in_process_client

PASSWORD = "correct horse battery"
QUERY_SECRET = "query-token-value-that-must-never-be-logged"


class Exploding:
    """A get-posts use case whose storage has a bug."""

    async def execute(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")


@pytest.fixture
async def client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    container = make_container(max_body_bytes=1024)
    container.get_posts.override(providers.Object(Exploding()))
    # raise_app_exceptions=False: the server's view, where a bug is a 500, not an exception.
    async with in_process_client(container, raise_app_exceptions=False) as http:
        yield http


@pytest.fixture(autouse=True)
def quiet_test_client() -> Iterator[None]:
    """The test client logs the URLs it requests, query strings and all; only the server's log
    is under test."""
    client_log = logging.getLogger("httpx")
    level = client_log.level
    client_log.setLevel(logging.WARNING)
    yield
    client_log.setLevel(level)


@pytest.fixture
def log_output() -> Iterator[Callable[[str], io.StringIO]]:
    """Installs hexpost's logging on a buffer, as `hexpost serve` would; restores the root after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def install(log_format: str) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging("INFO", log_format, stream=buffer)  # type: ignore[arg-type]
        return buffer

    yield install
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "hexpost.access"]


async def token(client: httpx.AsyncClient) -> str:
    answer = await client.post(
        "/api/v1/users/register", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert answer.status_code == 201
    value = answer.json()["access_token"]
    assert isinstance(value, str)
    return value


async def test_each_request_is_one_line_with_its_fields_and_no_query_string(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    bearer = await token(client)
    caplog.set_level(logging.INFO)
    answer = await client.post(
        "/api/v1/posts/add-post",
        params={"token": QUERY_SECRET},
        json={"text": "hello"},
        headers={"Authorization": f"Bearer {bearer}", "X-Request-ID": "client-chosen-id.42"},
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "client-chosen-id.42"
    [record] = access_records(caplog)
    fields = {key: getattr(record, key) for key in ("method", "path", "status", "user_id", "request_id")}
    assert fields == {
        "method": "POST",
        "path": "/api/v1/posts/add-post",
        "status": 200,
        "user_id": 1,
        "request_id": "client-chosen-id.42",
    }
    assert isinstance(record.duration_ms, float)  # type: ignore[attr-defined]
    assert record.getMessage().startswith("POST /api/v1/posts/add-post 200 ")
    assert QUERY_SECRET not in caplog.text
    assert bearer not in caplog.text


@pytest.mark.parametrize(
    "offered", ["", "has spaces", "line\\nbreak", "x" * 129, 'quote"d', "semi;colon", "é"]
)
async def test_an_unsafe_request_id_is_replaced_by_a_generated_one(
    client: httpx.AsyncClient, offered: str
) -> None:
    answer = await client.get("/healthz", headers=[(b"X-Request-ID", offered.encode())])
    generated = answer.headers["x-request-id"]
    assert generated != offered
    assert len(generated) == 32
    assert generated.isalnum()


async def test_errors_carry_a_request_id_and_are_logged_with_their_status(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    bearer = await token(client)
    caplog.set_level(logging.INFO)

    unauthorized = await client.get("/api/v1/posts/get-posts", params={"token": QUERY_SECRET})
    too_large = await client.post(
        "/api/v1/users/register", content=b"x" * 2048, headers={"Content-Type": "application/json"}
    )
    failed = await client.get("/api/v1/posts/get-posts", headers={"Authorization": f"Bearer {bearer}"})

    assert [unauthorized.status_code, too_large.status_code, failed.status_code] == [401, 413, 500]
    ids = [answer.headers["x-request-id"] for answer in (unauthorized, too_large, failed)]
    assert len(set(ids)) == 3
    logged = [(r.path, r.status, r.user_id, r.request_id) for r in access_records(caplog)]  # type: ignore[attr-defined]
    assert logged == [
        ("/api/v1/posts/get-posts", 401, None, ids[0]),
        ("/api/v1/users/register", 413, None, ids[1]),
        ("/api/v1/posts/get-posts", 500, 1, ids[2]),
    ]
    # The traceback stays in the server's log; the client gets none.
    assert len([r for r in caplog.records if r.exc_info is not None]) == 1
    assert "RuntimeError: boom" in caplog.text
    assert failed.json() == {"detail": "Internal Server Error"}
    assert QUERY_SECRET not in caplog.text


async def test_passwords_and_tokens_never_reach_the_log(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bearer = await token(client)
    await client.post("/api/v1/users/login", data={"username": "alice@example.com", "password": PASSWORD})
    await client.post(
        "/api/v1/users/login", json={"email": "alice@example.com", "password": "wrong-password"}
    )
    await client.get("/api/v1/posts/get-posts", params={"token": bearer})
    assert len(access_records(caplog)) == 4
    for secret in (PASSWORD, "wrong-password", bearer):
        assert secret not in caplog.text


async def test_json_format_is_one_parseable_object_per_line(
    client: httpx.AsyncClient, log_output: Callable[[str], io.StringIO]
) -> None:
    bearer = await token(client)
    output = log_output("json")
    await client.get("/healthz")
    await client.get("/api/v1/posts/get-posts", params={"token": QUERY_SECRET})
    await client.get("/api/v1/posts/get-posts", headers={"Authorization": f"Bearer {bearer}"})

    await asyncio.sleep(0)  # request lines are written at the end of the loop's turn
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "hexpost.access"]
    # The successful probe is logged at DEBUG, below the configured INFO.
    assert [(line["path"], line["status"], line["user_id"]) for line in access] == [
        ("/api/v1/posts/get-posts", 401, None),
        ("/api/v1/posts/get-posts", 500, 1),
    ]
    for line in access:
        assert {"time", "level", "message", "method", "duration_ms", "request_id"} <= line.keys()
    [error] = [line for line in lines if "exc_info" in line]
    assert "RuntimeError: boom" in error["exc_info"]
    assert error["request_id"] == access[1]["request_id"]
    assert QUERY_SECRET not in output.getvalue()


async def test_text_format_is_a_readable_line_per_request(
    client: httpx.AsyncClient, log_output: Callable[[str], io.StringIO]
) -> None:
    output = log_output("text")
    answer = await client.get("/api/v1/posts/get-posts", params={"token": QUERY_SECRET})
    await asyncio.sleep(0)  # request lines are written at the end of the loop's turn
    [line] = output.getvalue().splitlines()
    assert " INFO hexpost.access: GET /api/v1/posts/get-posts 401 " in line
    assert f"request_id={answer.headers['x-request-id']}" in line
    assert "user_id=-" in line
    assert QUERY_SECRET not in line


async def test_a_compatibility_api_user_is_named_but_their_query_token_is_not(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    bearer = await token(client)
    caplog.set_level(logging.INFO)
    answer = await client.post("/posts/AddPost", params={"token": bearer}, json={"Post_Text": "hi"})
    assert answer.status_code == 200
    [record] = access_records(caplog)
    assert (record.path, record.status, record.user_id) == ("/posts/AddPost", 200, 1)  # type: ignore[attr-defined]
    assert bearer not in caplog.text
