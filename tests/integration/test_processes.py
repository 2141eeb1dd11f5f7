"""Several server processes on one MariaDB and one Redis: what one acknowledges, the other serves
on the very next request, while other clients keep reading from both."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.integration.faults import spare_port

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.slow]

ROUNDS = 12


def hexpost_command() -> list[str]:
    script = Path(sys.executable).with_name("hexpost")
    if script.exists():
        return [str(script)]
    found = shutil.which("hexpost")
    return [found] if found else [sys.executable, "-m", "entrypoints.cli"]


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server process exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/posts/get-posts", timeout=1).status_code == 401:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing served on port {port}")


@pytest.fixture
def servers(mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `hexpost serve` processes, the first with HEXPOST_WORKERS=2; their base URLs."""
    base_env = {key: value for key, value in os.environ.items() if not key.startswith("HEXPOST_")} | {
        "HEXPOST_DATABASE_URL": mysql_url,
        "HEXPOST_CACHE_URL": redis_url,
        "HEXPOST_CACHE_KEY_PREFIX": redis_prefix,
        "HEXPOST_JWT_SECRET": SECRET,
        "HEXPOST_VAR_DIR": str(tmp_path / "var"),
        "HEXPOST_LOG_LEVEL": "WARNING",
    }
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for workers in (2, 1):
            port = spare_port()
            env = base_env | {"HEXPOST_PORT": str(port), "HEXPOST_WORKERS": str(workers)}
            process = subprocess.Popen([*hexpost_command(), "serve"], env=env, cwd=tmp_path)
            started.append((process, port))
        for process, port in started:
            wait_until_serving(process, port)
        yield [f"http://127.0.0.1:{port}" for _, port in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_a_write_through_one_process_is_read_through_the_other_at_once(servers: list[str]) -> None:
    first_url, second_url = servers
    async with (
        httpx.AsyncClient(base_url=first_url, timeout=30) as first,
        httpx.AsyncClient(base_url=second_url, timeout=30) as second,
    ):
        registered = await first.post(
            "/api/v1/users/register", json={"email": "multi@example.com", "password": "correct horse"}
        )
        assert registered.status_code == 201
        auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        stop = asyncio.Event()
        reads: list[int] = []

        async def keep_reading(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                answer = await client.get("/api/v1/posts/get-posts", headers=auth)
                assert answer.status_code == 200
                reads.append(answer.status_code)

        async def ids(client: httpx.AsyncClient) -> list[int]:
            answer = await client.get("/api/v1/posts/get-posts", headers=auth)
            assert answer.status_code == 200
            return [post["id"] for post in answer.json()]

        readers = [asyncio.create_task(keep_reading(client)) for client in (first, second, first, second)]
        try:
            for number in range(ROUNDS):
                writer, reader = (first, second) if number % 2 == 0 else (second, first)
                added = await writer.post(
                    "/api/v1/posts/add-post", json={"text": f"post {number}"}, headers=auth
                )
                assert added.status_code == 200
                post_id = added.json()["PostID"]
                assert post_id in await ids(reader)
                assert post_id in await ids(writer)
                deleted = await reader.delete(f"/api/v1/posts/delete-post/{post_id}", headers=auth)
                assert deleted.status_code == 204
                assert post_id not in await ids(writer)
                assert post_id not in await ids(reader)
        finally:
            stop.set()
            await asyncio.gather(*readers)
        assert len(reads) > ROUNDS
