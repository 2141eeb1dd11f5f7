"""Concurrent readers of one user's very large list, in rounds: each round starts `clients` reads
at once and waits for all of them. Cold rounds are preceded by a write of that user (a tiny post,
deleted after the round), which drops the cached list, so that every round's reads miss."""

from __future__ import annotations

import asyncio
import contextlib
import time

import attrs
import httpx

API = "/api/v1"


@attrs.frozen
class BigReads:
    requests: int
    non_2xx: int
    cache_hits: int
    p50_ms: float
    p99_ms: float
    megabytes_per_read: float


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def _read(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, bool, float, int]:
    """Status 0 when the connection failed or was closed before the whole answer came."""
    started = time.perf_counter()
    size = 0
    try:
        async with client.stream("GET", f"{API}/posts/get-posts", headers=headers) as response:
            async for chunk in response.aiter_raw():
                size += len(chunk)
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


async def big_reads(base_url: str, token: str, clients: int, seconds: float, *, cold: bool) -> BigReads:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    statuses: list[int] = []
    hits = 0
    sizes: list[int] = []
    limits = httpx.Limits(max_connections=clients + 1)
    async with httpx.AsyncClient(base_url=base_url, timeout=120.0, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or not latencies:
            written: int | None = None
            if cold:
                written = await _write(client, headers)
            for status, hit, seconds_taken, size in await asyncio.gather(
                *(_read(client, headers) for _ in range(clients))
            ):
                statuses.append(status)
                hits += hit
                latencies.append(seconds_taken * 1000)
                sizes.append(size)
            if written is not None:
                with contextlib.suppress(httpx.TransportError):
                    await client.delete(f"{API}/posts/delete-post/{written}", headers=headers)
    return BigReads(
        requests=len(statuses),
        non_2xx=sum(1 for status in statuses if not 200 <= status < 300),
        cache_hits=hits,
        p50_ms=round(_percentile(latencies, 0.5), 1),
        p99_ms=round(_percentile(latencies, 0.99), 1),
        megabytes_per_read=round(max(sizes) / 2**20, 1),
    )
