"""OpenTelemetry: a request is one server span with SQL and Redis child spans; its log line names the
trace; off (the default), OpenTelemetry is not even imported."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from entrypoints.container import Container
from entrypoints.logs import configure_logging
from entrypoints.tracing import Tracing, TracingConfigurationError, check, requested
from tests.conftest import migrate_to
from tests.http_client import in_process_client
from tests.unit.fakes import DownCache

GET_POSTS = "/api/v1/posts/get-posts"


def _server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert len(servers) == 1, [span.name for span in spans]
    return servers[0]


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def _db_system(span: ReadableSpan) -> object:
    attributes = span.attributes or {}
    return attributes.get("db.system", attributes.get("db.system.name"))


def _is_sql(span: ReadableSpan) -> bool:
    return _db_system(span) in {"sqlite", "mysql"}


def _is_redis(span: ReadableSpan) -> bool:
    return _db_system(span) == "redis"


@pytest.mark.redis
async def test_a_get_posts_miss_has_sql_and_redis_spans_and_a_hit_no_sql(
    make_container: Callable[..., Container],
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}"
    migrate_to(database_url)
    container = make_container(database_url=database_url, cache_url=redis_url, cache_key_prefix=redis_prefix)
    exporter = InMemorySpanExporter()
    tracing = Tracing([SimpleSpanProcessor(exporter)])
    container.tracing.override(providers.Object(tracing))
    try:
        async with in_process_client(container) as http:
            registered = await http.post(
                "/api/v1/users/register", json={"email": "traced@example.com", "password": "correct horse"}
            )
            auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            await http.post("/api/v1/posts/add-post", json={"text": "hello"}, headers=auth)

            exporter.clear()
            with caplog.at_level(logging.INFO, logger="hexpost.access"):
                miss = await http.get(GET_POSTS, headers=auth)
            assert miss.headers["x-cache"] == "miss"
            spans = list(exporter.get_finished_spans())
            server = _server_span(spans)
            assert server.name == f"GET {GET_POSTS}"
            assert (server.attributes or {})["http.route"] == GET_POSTS
            children = _children(spans, server)
            assert any(_is_sql(span) for span in children), [s.name for s in children]
            assert any(_is_redis(span) for span in children), [s.name for s in children]
            assert {span.context.trace_id for span in spans if span.context} == {server.context.trace_id}
            (line,) = [r for r in caplog.records if r.name == "hexpost.access"]
            assert line.trace_id == format(server.context.trace_id, "032x")  # type: ignore[attr-defined]

            exporter.clear()
            hit = await http.get(GET_POSTS, headers=auth)
            assert hit.headers["x-cache"] == "hit"
            spans = list(exporter.get_finished_spans())
            server = _server_span(spans)
            children = _children(spans, server)
            assert not any(_is_sql(span) for span in spans), [
                (s.name, dict(s.attributes or {})) for s in spans
            ]
            assert any(_is_redis(span) for span in children)
    finally:
        tracing.close()


async def test_an_unmatched_path_is_one_span_name(make_container: Callable[..., Container]) -> None:
    container = make_container()
    exporter = InMemorySpanExporter()
    tracing = Tracing([SimpleSpanProcessor(exporter)])
    container.tracing.override(providers.Object(tracing))
    try:
        async with in_process_client(container) as http:
            await http.get("/no/such/42")
        (span,) = exporter.get_finished_spans()
        assert span.name == "GET <unmatched>"
    finally:
        tracing.close()


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "hexpost"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask_for_it(environ: dict[str, str], on: bool) -> None:
    assert requested(environ) is on


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_that_is_not_shipped_is_a_configuration_error(environ: dict[str, str]) -> None:
    with pytest.raises(TracingConfigurationError, match="OTEL_"):
        check(environ)


def test_off_the_server_does_not_load_tracing(tmp_path: Path) -> None:
    # (redis-py imports the OpenTelemetry metrics SDK by itself when it is installed; tracing's
    # SDK, its exporters and the instrumentations are hexpost's to load, and it does not.)
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("OTEL_", "HEXPOST_"))
    }
    environment.update(HEXPOST_DATABASE_URL="memory://", HEXPOST_VAR_DIR=str(tmp_path / "var"))
    program = (
        "import sys\n"
        "from entrypoints.asgi import create\n"
        "create()\n"
        "tracing = ('opentelemetry.sdk.trace', 'opentelemetry.instrumentation', 'opentelemetry.exporter')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(tracing))\n"
        "print(loaded)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "[]"


async def test_every_log_line_of_a_traced_request_names_its_trace(
    make_container: Callable[..., Container],
) -> None:
    container = make_container()

    # A cache that is down makes get-posts log a warning of its own besides the request's line.
    container.posts_cache.override(providers.Object(DownCache()))
    exporter = InMemorySpanExporter()
    tracing = Tracing([SimpleSpanProcessor(exporter)])
    container.tracing.override(providers.Object(tracing))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    try:
        async with in_process_client(container) as http:
            registered = await http.post(
                "/api/v1/users/register", json={"email": "lines@example.com", "password": "correct horse"}
            )
            auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            exporter.clear()
            buffer.truncate(0)
            buffer.seek(0)
            assert (await http.get(GET_POSTS, headers=auth)).status_code == 200
        server = _server_span(list(exporter.get_finished_spans()))
        # (The test client logs its own requests, outside the server's.)
        lines = [
            line for line in map(json.loads, buffer.getvalue().splitlines()) if line["logger"] != "httpx"
        ]
        assert {line["logger"] for line in lines} >= {"hexpost.access", "application.posts"}
        assert {line.get("trace_id") for line in lines} == {format(server.context.trace_id, "032x")}
    finally:
        tracing.close()
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
