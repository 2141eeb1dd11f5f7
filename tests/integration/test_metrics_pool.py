"""The database pool's metrics are read from SQLAlchemy's pool when scraped, waiting callers included."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from adapters.clock import SystemClock
from adapters.prometheus import Metrics
from adapters.sqlalchemy.engine import EngineOptions, SqlUnitsOfWork, create_engine
from tests.metrics_text import value


async def test_a_full_pool_shows_its_checked_out_connection_and_who_waits(tmp_path: Path) -> None:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}",
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=30,
    )
    metrics = Metrics()
    metrics.watch_pool(lambda: engine.pool)
    try:
        async with engine.connect():
            waiters = [asyncio.create_task(_use(engine)) for _ in range(2)]
            for _ in range(200):
                text = metrics.exposition().decode()
                if value(text, "hexpost_db_pool_waiting") == 2:
                    break
                await asyncio.sleep(0.01)
            assert value(text, "hexpost_db_pool_waiting") == 2
            assert value(text, "hexpost_db_pool_checked_out") == 1
            assert value(text, "hexpost_db_pool_size") == 1
        await asyncio.gather(*waiters)
        text = metrics.exposition().decode()
        assert value(text, "hexpost_db_pool_waiting") == 0
        assert value(text, "hexpost_db_pool_checked_out") == 0
    finally:
        await engine.dispose()


async def _use(engine: AsyncEngine) -> None:
    async with engine.connect():
        pass


async def test_units_of_work_waiting_in_line_for_a_full_pool_are_shown_as_waiting(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'queued.db'}"
    options = EngineOptions(pool_size=1, max_overflow=0, operation_timeout_seconds=30)
    engine = create_engine(url, options)
    units = SqlUnitsOfWork(engine, options, SystemClock())
    metrics = Metrics()
    metrics.watch_pool(lambda: engine.pool, lambda: units.waiting)
    try:
        async with units():
            waiters = [asyncio.create_task(_work(units)) for _ in range(2)]
            for _ in range(200):
                if units.waiting == 2:
                    break
                await asyncio.sleep(0.01)
            assert value(metrics.exposition().decode(), "hexpost_db_pool_waiting") == 2
        await asyncio.gather(*waiters)
        assert value(metrics.exposition().decode(), "hexpost_db_pool_waiting") == 0
    finally:
        await engine.dispose()


async def _work(units: SqlUnitsOfWork) -> None:
    async with units():
        pass
