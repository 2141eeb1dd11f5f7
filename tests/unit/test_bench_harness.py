"""The bench harness's own pieces (the bench itself is `make bench`, never part of `make test`)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.biglist import Readers
from bench.dbceiling import sqlite_commits
from bench.processes import behind_everything_else
from bench.report import Ratio, Row, markdown, write
from bench.wrk import Load, WrkResult


def test_a_ratio_is_taken_against_the_mean_of_the_runs_beside_it() -> None:
    ratio = Ratio.of(300.0, "ceiling", [500.0, 700.0])

    assert (ratio.reference, ratio.value) == (600.0, 0.5)


def test_a_ratio_against_nothing_measured_is_zero_not_a_crash() -> None:
    assert Ratio.of(300.0, "ceiling", [0.0, 0.0]).value == 0.0


def test_the_table_shows_each_ratio_and_whether_the_target_was_met(tmp_path: Path) -> None:
    met = Row(
        "embedded", "cached get-posts", 64, 2500.0, 20.0, 90.0, ratios=[Ratio.of(2500, "ceiling", [5000])]
    )
    met.target, met.met = ">= 0.50 of ceiling", True
    missed = Row("embedded", "server RSS after the whole run", 0, None, rss_mb=130.0, target="<= 120 MB")
    missed.met = False

    table = markdown([met, missed])
    md, js = write(tmp_path, "run", "header", [met, missed], {"quick": True})

    row = (
        "| embedded | cached get-posts | 64 | 2,500.0 | 20.00 | 90.00 | 0 | 0 | - | 0.50 of ceiling (5,000) "
    )
    assert row + "| >= 0.50 of ceiling ✓ |" in table
    assert "<= 120 MB ✗" in table
    assert md.read_text() == "header\n\n" + table
    assert json.loads(js.read_text())["rows"][0]["ratios"][0]["value"] == 0.5
    assert (tmp_path / "latest.md").read_text() == md.read_text()


def test_wrk_sends_the_method_headers_and_body_it_is_given() -> None:
    script = Load("/x", "POST", {"Authorization": "Bearer t"}, '{"text": "a"}').script()

    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Authorization"] = [==[Bearer t]==]' in script
    assert 'wrk.body = [==[{"text": "a"}]==]' in script
    assert "done = function(summary, latency, requests)" in script


def test_wrk_sends_each_authorization_in_turn_when_given_several() -> None:
    script = Load("/x", authorizations=("Bearer a", "Bearer b")).script()

    assert "local authorizations = {[==[Bearer a]==], [==[Bearer b]==]}" in script
    assert 'wrk.headers["Authorization"] = authorizations[turn]' in script
    assert "return wrk.format()" in script


def test_the_sqlite_ceiling_commits_posts_into_hexposts_schema(tmp_path: Path) -> None:
    result = sqlite_commits(str(tmp_path / "ceiling.db"), 0.2)

    assert result["operations"] > 0
    assert result["per_second"] == pytest.approx(result["operations"] / result["seconds"])


def test_the_big_reader_runs_behind_wrk_and_only_while_it_reads() -> None:
    policies: list[int] = []

    def read() -> None:
        with behind_everything_else():
            policies.append(os.sched_getscheduler(0))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        read()

    assert policies == [os.SCHED_IDLE]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


BODY_BYTES = 64 * 2**20


@contextmanager
def big_answers() -> Iterator[tuple[str, Callable[[], int]]]:
    """A server whose every answer is a 64 MiB body, written as fast as its clients take it: its
    URL, and how many bytes it has written so far."""
    written = 0
    ready = threading.Event()
    port = 0
    loop: asyncio.AbstractEventLoop | None = None
    stopping: asyncio.Event | None = None

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % BODY_BYTES)
        chunk = b"x" * 65536
        for _ in range(BODY_BYTES // len(chunk)):
            writer.write(chunk)
            await writer.drain()
            written += len(chunk)
        writer.close()
        await writer.wait_closed()

    async def serve() -> None:
        nonlocal port, loop, stopping
        loop, stopping = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stopping.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait()
    try:
        yield f"http://127.0.0.1:{port}", lambda: written
    finally:
        assert loop is not None
        assert stopping is not None
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=5)


def _once_still(written: Callable[[], int]) -> int:
    """`written()` once it has not moved for a quarter of a second."""
    last = written()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = written()
        if now == last:
            return now
        last = now
    raise AssertionError("the server has not gone still")


def test_paused_big_readers_stop_taking_the_servers_answers_and_take_them_whole_once_resumed() -> None:
    with big_answers() as (url, written), Readers(url, "token", 2, cold=False) as readers:
        readers.pause()
        paused_at = _once_still(written)
        # What the two connections' buffers take in, on either side.
        assert paused_at < BODY_BYTES // 2
        time.sleep(0.3)
        assert written() == paused_at
        readers.resume()
        reads = readers.stop()

    assert written() == 2 * BODY_BYTES
    assert (reads.requests, reads.non_2xx, reads.megabytes_per_read) == (2, 0, 64.0)


def test_windows_of_a_kind_are_their_requests_over_their_time_and_their_median_percentiles() -> None:
    windows = [
        WrkResult(requests, 1.0, requests, p50, p99, errors, 0)
        for requests, p50, p99, errors in [(1000, 1.0, 2.0, 0), (3000, 2.0, 30.0, 1), (2000, 3.0, 4.0, 0)]
    ]

    taken = WrkResult.of_windows(windows)

    assert (taken.requests, taken.seconds, taken.per_second) == (6000, 3.0, 2000.0)
    assert (taken.p50_ms, taken.p99_ms, taken.non_2xx) == (2.0, 4.0, 1)
