"""Browser clients on HEXPOST_CORS_ORIGINS may call the API; others get no CORS headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.http_client import in_process_client

ORIGIN = "https://app.example"


@pytest.fixture
async def cors_client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container(cors_origins=[ORIGIN], max_body_bytes=1024)) as http:
        yield http


async def test_a_preflight_from_an_allowed_origin_may_send_a_bearer_token_and_json(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.options(
        "/api/v1/posts/add-post",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


async def test_a_preflight_from_another_origin_is_refused(cors_client: httpx.AsyncClient) -> None:
    answer = await cors_client.options(
        "/api/v1/posts/get-posts",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers


async def test_responses_expose_the_cache_and_request_id_headers_even_a_413(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.get("/api/v1/posts/get-posts", headers={"Origin": ORIGIN})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-cache" in exposed
    assert "x-request-id" in exposed

    too_large = await cors_client.post(
        "/api/v1/users/register", content=b"x" * 2048, headers={"Origin": ORIGIN}
    )
    assert too_large.status_code == 413
    assert too_large.headers["access-control-allow-origin"] == ORIGIN


async def test_without_configured_origins_there_are_no_cors_headers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


def test_origins_may_be_given_as_a_comma_separated_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEXPOST_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings(_env_file=None).cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("HEXPOST_CORS_ORIGINS", '["https://a.example"]')
    assert Settings(_env_file=None).cors_origins == ["https://a.example"]
