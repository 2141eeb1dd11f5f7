"""/metrics of real `hexpost serve` processes: with two workers a scrape reports the totals of both,
whichever answers it; the metrics port can be one of its own."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.hexpost_servers import free_port, running_server, server_environment
from tests.metrics_text import label_values, value

pytestmark = [pytest.mark.slow]

MAX_REQUESTS = 600


def _healthz_counts_by_process(directory: Path) -> dict[str, float]:
    """What each worker's own file says it answered on /healthz."""
    counts = {}
    for file in directory.glob("counter_*.db"):
        pid = file.stem.removeprefix("counter_")
        metrics = MultiProcessCollector.merge([str(file)], accumulate=True)  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            sample.value
            for metric in metrics
            for sample in metric.samples
            if sample.name == "http_requests_total" and sample.labels.get("route") == "/healthz"
        )
    return counts


@pytest.mark.redis
def test_two_workers_report_the_totals_of_both(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    directory = tmp_path / "var" / "prometheus"
    directory.mkdir(parents=True)
    (directory / "counter_999999.db").write_bytes(b"left over from an earlier run")
    metrics_port = free_port()
    environment = server_environment(
        tmp_path,
        cache_url=redis_url,
        HEXPOST_CACHE_KEY_PREFIX=redis_prefix,
        HEXPOST_WORKERS="2",
        HEXPOST_METRICS=str(metrics_port),
    )
    with running_server(tmp_path, environment, migrate=True) as server:
        assert not (directory / "counter_999999.db").exists()
        assert httpx.get(f"{server.url}/metrics").status_code == 404
        sent = 0
        # Each request on a connection of its own, until both workers have answered some.
        while sent < MAX_REQUESTS:
            for _ in range(20):
                assert httpx.get(f"{server.url}/healthz").status_code == 200
            sent += 20
            counts = _healthz_counts_by_process(directory)
            if len(counts) == 2 and all(counts.values()):
                break
        assert len(counts) == 2, counts
        assert all(counts.values()), counts

        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        total = value(scraped.text, "http_requests_total", route="/healthz", method="GET", status="200")
        assert total == sum(counts.values())
        assert total >= sent
        assert all(count < total for count in counts.values())

        # Each worker's own state (process, pool) is sampled into the files as well.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            if len(label_values(text, "process_resident_memory_bytes", "pid")) == 2:
                break
            time.sleep(0.5)
        assert len(label_values(text, "process_resident_memory_bytes", "pid")) == 2
        assert value(text, "hexpost_db_pool_size") == 2 * 5
    # Workers that stopped are no longer counted among the live ones.
    assert not list(directory.glob("gauge_live*.db"))


def test_one_process_serves_its_metrics_on_their_own_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    environment = server_environment(tmp_path, HEXPOST_METRICS=str(metrics_port))
    with running_server(tmp_path, environment, migrate=True) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200
        assert value(scraped.text, "http_requests_total", route="/healthz") >= 1
        assert value(scraped.text, "process_resident_memory_bytes") > 0
