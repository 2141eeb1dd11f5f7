"""GET /metrics: requests by route template, method and status; latency; cache; logins; 429s; pool;
process. Never a raw path, user, email or token in a label."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from dependency_injector import providers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from adapters.prometheus import Metrics
from entrypoints.container import Container
from entrypoints.http.errors import server_error
from entrypoints.http.metrics import HttpMetrics
from entrypoints.http.request_log import LoggedStarlette
from entrypoints.http.route_templates import UNMATCHED, route_templates
from tests.conftest import migrate_to
from tests.http_client import in_process_client
from tests.metrics_text import label_values, samples, value
from tests.unit.fakes import DownCache

EMAIL = "metrics@example.com"
PASSWORD = "correct horse"


async def _register(http: httpx.AsyncClient, email: str = EMAIL) -> dict[str, str]:
    registered = await http.post("/api/v1/users/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201
    return {"Authorization": f"Bearer {registered.json()['access_token']}"}


async def _scrape(http: httpx.AsyncClient) -> str:
    scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    return scraped.text


async def test_requests_are_counted_by_route_template_never_by_raw_path(client: httpx.AsyncClient) -> None:
    auth = await _register(client)
    for post_id in (123456, 654321):
        assert (await client.delete(f"/api/v1/posts/delete-post/{post_id}", headers=auth)).status_code == 404
    assert (await client.get("/no/such/path/secret-looking-path")).status_code == 404
    assert (await client.get("/posts/GetPosts", params={"token": "abc.def.ghi"})).status_code == 401

    text = await _scrape(client)

    delete = "/api/v1/posts/delete-post/{post_id}"
    assert value(text, "http_requests_total", route=delete, method="DELETE", status="404") == 2
    assert value(text, "http_requests_total", route="/api/v1/users/register", status="201") == 1
    assert value(text, "http_requests_total", route=UNMATCHED, method="GET", status="404") == 1
    assert value(text, "http_requests_total", route="/posts/GetPosts", status="401") == 1
    assert value(text, "http_request_duration_seconds_count", route=delete, method="DELETE") == 2
    assert value(text, "http_requests_in_flight") == 1  # the scrape itself
    # Numbers are looked for in label values only: a sample's value may contain any digits.
    labels = {value for _, sample_labels, _ in samples(text) for value in sample_labels.values()}
    assert not any(post_id in label for label in labels for post_id in ("123456", "654321"))
    for secret in ("secret-looking", "metrics@example.com", "abc.def", auth["Authorization"][7:]):
        assert secret not in text


async def test_a_method_nobody_routes_is_one_label_value(client: httpx.AsyncClient) -> None:
    for method in ("BREW", "WHEN", "PROPFIND"):
        await client.request(method, "/healthz")
    text = await _scrape(client)
    # (The scrape is counted once it has answered.)
    assert label_values(text, "http_requests_total", "method") == {"other"}
    assert value(text, "http_requests_total", route="/healthz", method="other") == 3


async def test_cache_hits_and_misses_follow_get_posts(client: httpx.AsyncClient) -> None:
    auth = await _register(client)
    answers = [await client.get("/api/v1/posts/get-posts", headers=auth) for _ in range(3)]
    assert [a.headers["x-cache"] for a in answers] == ["miss", "hit", "hit"]
    text = await _scrape(client)
    assert value(text, "hexpost_cache_lookups_total", result="miss") == 1
    assert value(text, "hexpost_cache_lookups_total", result="hit") == 2
    assert value(text, "hexpost_cache_lookups_total", result="error") == 0


async def test_an_unavailable_cache_is_counted_as_errors(make_container: Callable[..., Container]) -> None:
    container = make_container()

    container.posts_cache.override(providers.Object(DownCache()))
    async with in_process_client(container) as http:
        auth = await _register(http)
        assert (
            await http.post("/api/v1/posts/add-post", json={"text": "x"}, headers=auth)
        ).status_code == 200
        assert (await http.get("/api/v1/posts/get-posts", headers=auth)).status_code == 200
        text = await _scrape(http)
    assert value(text, "hexpost_cache_lookups_total", result="error") == 1
    assert value(text, "hexpost_cache_errors_total", operation="lookup") == 1
    # Registration does not touch the cache; add-post invalidates; get-posts does not fill.
    assert value(text, "hexpost_cache_errors_total", operation="invalidate") == 1


async def test_logins_of_both_apis_are_counted_by_outcome(client: httpx.AsyncClient) -> None:
    await _register(client)
    good = {"email": EMAIL, "password": PASSWORD}
    assert (await client.post("/api/v1/users/login", json=good)).status_code == 200
    bad = {"email": EMAIL, "password": "wrong password"}
    assert (await client.post("/api/v1/users/login", json=bad)).status_code == 404
    form = {"username": EMAIL, "password": "wrong again"}
    assert (await client.post("/auth/login", data=form)).status_code == 400
    assert (await client.post("/auth/login", data={**form, "password": PASSWORD})).status_code == 200
    # Not a login attempt at all: the form is incomplete.
    assert (await client.post("/auth/login", data={"username": EMAIL})).status_code == 422
    text = await _scrape(client)
    assert value(text, "hexpost_logins_total", outcome="success") == 2
    assert value(text, "hexpost_logins_total", outcome="failure") == 2
    assert value(text, "hexpost_logins_total", outcome="throttled") == 0


async def test_a_429_counts_as_rate_limited_and_on_a_login_route_as_throttled() -> None:
    async def refuse(_request: Request) -> Response:
        return Response(status_code=429, headers={"Retry-After": "1"})

    routes = [
        Mount("/api/v1", routes=[Route("/users/login", refuse, methods=["POST"])]),
        Mount("/elsewhere", routes=[Route("/add", refuse, methods=["POST"])]),
    ]
    metrics = Metrics()
    app = LoggedStarlette(
        routes=routes, server_error=server_error, observer=HttpMetrics(metrics, route_templates(routes))
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        await http.post("/api/v1/users/login")
        await http.post("/api/v1/users/login")
        await http.post("/elsewhere/add")
    text = metrics.exposition().decode()
    assert value(text, "hexpost_logins_total", outcome="throttled") == 2
    assert value(text, "hexpost_rate_limited_total", route="/api/v1/users/login") == 2
    assert value(text, "hexpost_rate_limited_total", route="/elsewhere/add") == 1
    assert value(text, "hexpost_logins_total") == 2


async def test_an_unhandled_error_is_counted_as_the_500_it_becomes() -> None:
    async def fail(_request: Request) -> Response:
        raise RuntimeError("boom")

    routes = [Route("/fails/{thing}", fail)]
    metrics = Metrics()
    app = LoggedStarlette(
        routes=routes, server_error=server_error, observer=HttpMetrics(metrics, route_templates(routes))
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/fails/1")).status_code == 500
    text = metrics.exposition().decode()
    assert value(text, "http_requests_total", route="/fails/{thing}", method="GET", status="500") == 1
    assert value(text, "http_requests_in_flight") == 0


async def test_process_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    text = await _scrape(client)
    assert value(text, "process_resident_memory_bytes") > 0
    assert {"process_cpu_seconds_total", "process_open_fds"} <= {name for name, _, _ in samples(text)}


async def test_the_database_pool_is_read_at_scrape_time(
    make_container: Callable[..., Container], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}"
    migrate_to(url)
    async with in_process_client(make_container(database_url=url)) as http:
        await _register(http)
        text = await _scrape(http)
    assert value(text, "hexpost_db_pool_size") == 5
    assert value(text, "hexpost_db_pool_checked_out") == 0
    assert value(text, "hexpost_db_pool_waiting") == 0
    assert "hexpost_db_pool_overflow" in {name for name, _, _ in samples(text)}


async def test_metrics_off_means_no_route_and_no_counting(make_container: Callable[..., Container]) -> None:
    container = make_container(metrics="off")
    assert container.metrics() is None
    async with in_process_client(container) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_metrics_on_a_port_of_their_own_leave_the_api_port(
    make_container: Callable[..., Container],
) -> None:
    async with in_process_client(make_container(metrics=9464)) as http:
        assert (await http.get("/metrics")).status_code == 404


@pytest.mark.parametrize("setting", ["sometimes", "0", "70000"])
def test_a_bad_metrics_setting_is_refused(make_settings: Callable[..., object], setting: str) -> None:
    with pytest.raises(ValueError, match="metrics"):
        make_settings(metrics=setting)


async def test_logins_refused_by_throttling_are_counted_as_throttled(
    make_container: Callable[..., Container],
) -> None:
    async with in_process_client(make_container(login_limits="account_address: 3/15 minutes")) as http:
        await _register(http)
        bad = {"email": EMAIL, "password": "wrong password"}
        statuses = [(await http.post("/api/v1/users/login", json=bad)).status_code for _ in range(5)]
        text = await _scrape(http)
    assert statuses == [404, 404, 404, 429, 429]
    assert value(text, "hexpost_logins_total", outcome="failure") == 3
    assert value(text, "hexpost_logins_total", outcome="throttled") == 2
    assert value(text, "hexpost_rate_limited_total", route="/api/v1/users/login") == 2
