"""The request log's line is written without a LogRecord, but reads exactly as one formatted by the
configured formatter would."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable, Iterator

import pytest

from entrypoints.logs import ACCESS_LOGGER, access_log, configure_logging

FIELDS = {
    "method": "GET",
    "path": "/api/v1/posts/get-posts",
    "status": 200,
    "duration_ms": 1.2,
    "user_id": 7,
    "request_id": "a=b",
}


@pytest.fixture
def configured() -> Iterator[Callable[..., io.StringIO]]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def install(log_format: str, buffer: io.StringIO | None = None) -> io.StringIO:
        buffer = buffer or io.StringIO()
        configure_logging("INFO", log_format, stream=buffer)  # type: ignore[arg-type]
        return buffer

    yield install
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def write_both_ways(output: io.StringIO) -> tuple[str, str]:
    """The same request logged by `access_log` and through `logging` with the handler's formatter."""
    access_log.log(logging.INFO, "GET", "/api/v1/posts/get-posts", 200, 1.2, 7, "a=b")
    logging.getLogger(ACCESS_LOGGER).info(
        "%s %s %s %.1fms", "GET", "/api/v1/posts/get-posts", 200, 1.2, extra=FIELDS
    )
    direct, through_logging = output.getvalue().splitlines()
    return direct, through_logging


def test_a_text_line_is_the_text_formatters_line(configured: Callable[[str], io.StringIO]) -> None:
    direct, through_logging = write_both_ways(configured("text"))

    timestamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    assert re.match(timestamp, direct)
    assert direct.split(" ", 2)[2] == through_logging.split(" ", 2)[2]
    assert direct.endswith(
        ' INFO hexpost.access: GET /api/v1/posts/get-posts 200 1.2ms user_id=7 request_id="a=b"'
    )


def test_a_json_line_is_the_json_formatters_object(configured: Callable[[str], io.StringIO]) -> None:
    direct, through_logging = (json.loads(line) for line in write_both_ways(configured("json")))

    assert direct.keys() == through_logging.keys()
    assert list(direct) == list(through_logging)
    assert {k: v for k, v in direct.items() if k != "time"} == {
        k: v for k, v in through_logging.items() if k != "time"
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", direct["time"])


def test_below_the_configured_level_nothing_is_written(configured: Callable[[str], io.StringIO]) -> None:
    output = configured("text")

    access_log.log(logging.DEBUG, "GET", "/api/v1/posts/get-posts", 200, 1.2, 7, "a=b")

    assert output.getvalue() == ""


def test_without_hexposts_handler_the_line_is_an_ordinary_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    access_log.log(logging.INFO, "GET", "/api/v1/posts/get-posts", 200, 1.2, 7, "a=b")

    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert record.getMessage() == "GET /api/v1/posts/get-posts 200 1.2ms"
    assert {key: getattr(record, key) for key in FIELDS} == FIELDS


class CountingBuffer(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_in_an_event_loop_the_lines_of_one_turn_are_written_together_at_its_end(
    configured: Callable[..., io.StringIO],
) -> None:
    output = CountingBuffer()
    configured("text", output)
    for request_id in ("one", "two", "three"):
        access_log.log(logging.INFO, "GET", "/api/v1/posts/get-posts", 200, 1.2, 7, request_id)
    assert output.getvalue() == ""

    await asyncio.sleep(0)

    assert [line.rsplit("=", 1)[1] for line in output.getvalue().splitlines()] == ["one", "two", "three"]
    assert output.writes == 1


async def test_any_other_record_writes_the_waiting_lines_first(
    configured: Callable[..., io.StringIO],
) -> None:
    output = configured("text")

    access_log.log(logging.INFO, "GET", "/api/v1/posts/get-posts", 200, 1.2, 7, "first")
    logging.getLogger("hexpost.test").warning("after")

    first, after = output.getvalue().splitlines()
    assert first.endswith("request_id=first")
    assert after.endswith("WARNING hexpost.test: after")
