"""Where the metrics of a server process go: off, at /metrics, or on a port of their own; and, with
several worker processes, the directory through which prometheus-client sums them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from adapters.prometheus import Metrics
from entrypoints.settings import Settings

# prometheus-client reads it when it is first imported: set before the workers start.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How often each worker copies its pool and process state into the shared files.
SAMPLE_SECONDS = 5.0


def multiprocess_directory(settings: Settings) -> Path:
    return settings.var_dir / "prometheus"


def prepare_multiprocess(settings: Settings) -> Path:
    """Run by the serving parent before it starts the workers: an empty directory (counts of an
    earlier run would otherwise be added to this one's), named to the workers by environment."""
    directory = multiprocess_directory(settings).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(directory)
    return directory


def multiprocess() -> bool:
    return MULTIPROCESS_VARIABLE in os.environ


def serve_metrics_port(settings: Settings) -> None:
    """The separate metrics port of several workers, served by their parent from the shared files."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    assert isinstance(settings.metrics, int)
    start_http_server(settings.metrics, addr=settings.host, registry=registry)


@asynccontextmanager
async def metrics_lifetime(settings: Settings, metrics: Metrics) -> AsyncIterator[None]:
    """What the metrics of one serving process need while it runs: the separate port (of a single
    process; several share their parent's), the sampler of its own state (several processes), and
    its live gauges retired when it ends."""
    from prometheus_client import start_http_server
    from prometheus_client.multiprocess import mark_process_dead

    server = None
    sampler = None
    if metrics.multiprocess:
        sampler = asyncio.create_task(metrics.sampler().run(SAMPLE_SECONDS))
    elif isinstance(settings.metrics, int):
        server, _thread = start_http_server(settings.metrics, addr=settings.host, registry=metrics.exposed)
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
