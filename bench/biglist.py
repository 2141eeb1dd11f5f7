"""Concurrent readers of one user's very large list, in rounds: each round starts `clients` reads
at once and waits for all of them. Cold rounds are preceded by a write of that user (a tiny post,
deleted after the round), which drops the cached list, so that every round's reads miss.

The readers run in a thread of their own, behind everything else on the load generator's core, and
can be paused and resumed: paused, they stop reading, and the server's answers stop once the small
receive windows of their connections are full. The harness measures the small user in short
windows with the readers going and paused in turn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import attrs
import httpx

from bench.processes import behind_everything_else

API = "/api/v1"
# What a paused reader's connection still takes in from the server. The kernel's own tuning grows a
# loopback receive buffer to tcp_rmem's maximum (32 MiB here): seconds of the server's work after a
# pause, on 16 connections.
RECEIVE_BUFFER_BYTES = 256 * 1024


@attrs.frozen
class BigReads:
    requests: int
    non_2xx: int
    cache_hits: int
    p50_ms: float
    p99_ms: float
    megabytes_per_read: float
    # From the first read to the end of the last round, paused or not.
    seconds: float


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def _read(
    client: httpx.AsyncClient, headers: dict[str, str], flowing: asyncio.Event
) -> tuple[int, bool, float, int]:
    """Status 0 when the connection failed or was closed before the whole answer came."""
    started = time.perf_counter()
    size = 0
    try:
        async with client.stream("GET", f"{API}/posts/get-posts", headers=headers) as response:
            async for chunk in response.aiter_raw():
                size += len(chunk)
                await flowing.wait()
            hit = response.headers.get("x-cache") == "hit"
            return response.status_code, hit, time.perf_counter() - started, size
    except httpx.TransportError:
        return 0, False, time.perf_counter() - started, size


async def _write(client: httpx.AsyncClient, headers: dict[str, str]) -> int | None:
    """A tiny post of the big user's, which drops their cached list; its id, to delete it after."""
    try:
        added = await client.post(f"{API}/posts/add-post", headers=headers, json={"text": "cold"})
    except httpx.TransportError:
        return None
    if added.status_code != 200:
        return None
    post_id: int = added.json()["PostID"]
    return post_id


class Readers:
    """Rounds of `clients` concurrent reads of the list of the user whose token is given, from
    entering until `stop`, which lets the round under way finish and says how the reads went."""

    def __init__(self, base_url: str, token: str, clients: int, *, cold: bool) -> None:
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._clients = clients
        self._cold = cold
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flowing: asyncio.Event | None = None
        self._result: BigReads | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="big-readers", daemon=True)

    def __enter__(self) -> Readers:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread.is_alive():
            self.stop()

    def pause(self) -> None:
        self._set_flowing(False)

    def resume(self) -> None:
        self._set_flowing(True)

    def stop(self) -> BigReads:
        self._stopping.set()
        self.resume()
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result

    def _set_flowing(self, flowing: bool) -> None:
        assert self._loop is not None
        assert self._flowing is not None
        self._loop.call_soon_threadsafe(self._flowing.set if flowing else self._flowing.clear)

    def _run(self) -> None:
        try:
            with behind_everything_else():
                self._result = asyncio.run(self._rounds())
        except BaseException as error:
            self._failure = error
        finally:
            self._started.set()

    async def _rounds(self) -> BigReads:
        self._loop = asyncio.get_running_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._started.set()
        latencies: list[float] = []
        statuses: list[int] = []
        hits = 0
        sizes: list[int] = []
        started = time.perf_counter()
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=self._clients + 1),
            socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)],
        )
        async with httpx.AsyncClient(base_url=self._base_url, timeout=120.0, transport=transport) as client:
            while not self._stopping.is_set() or not latencies:
                written: int | None = None
                if self._cold:
                    written = await _write(client, self._headers)
                for status, hit, seconds_taken, size in await asyncio.gather(
                    *(_read(client, self._headers, self._flowing) for _ in range(self._clients))
                ):
                    statuses.append(status)
                    hits += hit
                    latencies.append(seconds_taken * 1000)
                    sizes.append(size)
                if written is not None:
                    with contextlib.suppress(httpx.TransportError):
                        await client.delete(f"{API}/posts/delete-post/{written}", headers=self._headers)
        return BigReads(
            requests=len(statuses),
            non_2xx=sum(1 for status in statuses if not 200 <= status < 300),
            cache_hits=hits,
            p50_ms=round(_percentile(latencies, 0.5), 1),
            p99_ms=round(_percentile(latencies, 0.99), 1),
            megabytes_per_read=round(max(sizes) / 2**20, 1),
            seconds=time.perf_counter() - started,
        )
