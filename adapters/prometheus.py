"""Prometheus metrics with prometheus-client: the metric families, the cache port measured, the
database pool and the process read when scraped.

Names follow Prometheus' own conventions (`http_requests_total`, `http_request_duration_seconds`,
`process_*`); what only hexpost has is prefixed `hexpost_`. Label values come from small closed
sets (route templates, methods, statuses, outcomes): never a user id, email, token or raw path.

With several server processes (prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`)
every process writes its counters to files that any process sums when scraped. Collectors that
read a process's own state (pool, /proc) cannot be summed that way, so there each process copies
what they read into gauges of the files every few seconds instead (`Sampler`).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.pool import Pool, QueuePool

from application.callers import is_session_view
from application.errors import CacheUnavailable
from application.ports import CacheHit, CacheLookup, CacheMiss, PostsCache

log = logging.getLogger(__name__)

# From a cached get-posts (about a millisecond) to the 3 s deadline of a unit of work and beyond.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOGIN_OUTCOMES = ("success", "failure", "throttled")
CACHE_RESULTS = ("hit", "miss", "error")
CACHE_OPERATIONS = ("lookup", "fill", "invalidate")


class Metrics:
    """Every metric of one server process, in a registry of its own (no global state, so that
    several apps in one test process do not share counts)."""

    def __init__(self, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        self._answers: AnswerCounts | None = None
        if multiprocess:
            # Their counts must reach the shared files: prometheus-client's own metrics write them.
            self._requests = Counter(
                REQUESTS_NAME, REQUESTS_HELP, ["route", "method", "status"], registry=self.registry
            )
            self._duration = Histogram(
                DURATION_NAME,
                DURATION_HELP,
                ["route", "method"],
                buckets=DURATION_BUCKETS,
                registry=self.registry,
            )
        else:
            self._answers = AnswerCounts()
            self.registry.register(self._answers)
        # A plain number the HTTP edge keeps, read when scraped: a gauge's lock twice per request
        # would cost more than the rest of the request's metrics.
        self.in_flight = RequestsInFlight()
        self.logins = Counter(
            "hexpost_logins_total",
            "Login attempts of both APIs by outcome: success, failure (bad credentials), throttled.",
            ["outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "hexpost_rate_limited_total",
            "Requests refused with 429 (a rate limit or login throttling), by route template.",
            ["route"],
            registry=self.registry,
        )
        lookups_help = "Lookups of cached post lists: hit, miss, or error (the cache unavailable)."
        # Counted on every cached get-posts: as plain numbers in one process (see AnswerCounts).
        self.cache_lookups: CounterFamily = (
            Counter("hexpost_cache_lookups_total", lookups_help, ["result"], registry=self.registry)
            if multiprocess
            else LocalCounter("hexpost_cache_lookups_total", lookups_help, ["result"], registry=self.registry)
        )
        self.cache_errors = Counter(
            "hexpost_cache_errors_total",
            "Cache operations that failed because the cache was unavailable, by operation.",
            ["operation"],
            registry=self.registry,
        )
        # Series that exist from the start, so that rates and ratios have a zero to start from.
        for outcome in LOGIN_OUTCOMES:
            self.logins.labels(outcome)
        for result in CACHE_RESULTS:
            self.cache_lookups.labels(result)
        for operation in CACHE_OPERATIONS:
            self.cache_errors.labels(operation)
        self._local: list[Collector] = [self.in_flight, ProcessCollector(registry=None)]
        if multiprocess:
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)  # type: ignore[no-untyped-call]
        else:
            self._exposed = self.registry
            for collector in self._local:
                self.registry.register(collector)

    def answers(self, route: str, method: str, status: int) -> Callable[[float], None]:
        """What counts an answer of `route` to `method` with `status`, told how long it took."""
        if self._answers is not None:
            return self._answers.recorder(route, method, str(status))
        requests = self._requests.labels(route, method, str(status))
        duration = self._duration.labels(route, method)

        def record(seconds: float) -> None:
            requests.inc()
            duration.observe(seconds)

        return record

    def watch_pool(self, pool: Callable[[], Pool], queued: Callable[[], int] = lambda: 0) -> None:
        """Reports the state of the SQLAlchemy connection pool `pool` returns (an engine's current
        one: disposing an engine replaces it) when scraped; `queued` counts the callers waiting in
        line before the pool, who are waiting for its connections too."""
        collector = PoolCollector(pool, queued)
        self._local.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    @property
    def exposed(self) -> CollectorRegistry:
        """What a scrape reads: this process's registry, or the sum over every process's files."""
        return self._exposed

    def exposition(self) -> bytes:
        """The Prometheus text format (version 0.0.4, which every Prometheus reads)."""
        return generate_latest(self._exposed)

    def sampler(self) -> Sampler:
        return Sampler(self._local, self.registry)


REQUESTS_NAME = "http_requests_total"
REQUESTS_HELP = "HTTP requests answered, by route template, method and status."
DURATION_NAME = "http_request_duration_seconds"
DURATION_HELP = "Time from a request's arrival to the end of its answer, by route template and method."


class _Durations:
    """One (route, method)'s histogram: counts per bucket (not yet cumulative) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class _Answered:
    """Counts the answers of one (route, method, status)."""

    __slots__ = ("count", "durations")

    def __init__(self, durations: _Durations) -> None:
        self.count = 0
        self.durations = durations

    def __call__(self, seconds: float) -> None:
        self.count += 1
        durations = self.durations
        durations.total += seconds
        # The first bucket whose bound is at least `seconds` (the last: +Inf).
        durations.counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1


class AnswerCounts(Collector):
    """`http_requests_total` and `http_request_duration_seconds` of one process, counted as plain
    numbers and read when scraped: the locks of prometheus-client's metric objects cost a cached
    get-posts ~4 us of the core, a fifteenth of it. Read alike: the same names, labels and buckets
    (without the `_created` series)."""

    def __init__(self) -> None:
        self._answered: dict[tuple[str, str, str], _Answered] = {}
        self._durations: dict[tuple[str, str], _Durations] = {}

    def recorder(self, route: str, method: str, status: str) -> _Answered:
        key = (route, method, status)
        answered = self._answered.get(key)
        if answered is None:
            durations = self._durations.setdefault((route, method), _Durations())
            answered = self._answered[key] = _Answered(durations)
        return answered

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            REQUESTS_NAME.removesuffix("_total"), REQUESTS_HELP, labels=["route", "method", "status"]
        )
        for (route, method, status), answered in list(self._answered.items()):
            requests.add_metric([route, method, status], answered.count)
        yield requests
        duration = HistogramMetricFamily(DURATION_NAME, DURATION_HELP, labels=["route", "method"])
        bounds = [*map(floatToGoString, DURATION_BUCKETS), "+Inf"]
        for (route, method), durations in list(self._durations.items()):
            cumulative = list(zip(bounds, itertools.accumulate(durations.counts), strict=True))
            duration.add_metric([route, method], cumulative, durations.total)
        yield duration


class CountChild(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class CounterFamily(Protocol):
    def labels(self, *values: str) -> CountChild: ...


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class LocalCounter(Collector):
    """A counter family of one process, as plain numbers read when scraped, counted through
    prometheus-client's `labels(...).inc()` (see AnswerCounts for why)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name = name.removesuffix("_total")
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._children: dict[tuple[str, ...], _Count] = {}
        registry.register(self)

    def labels(self, *values: str) -> _Count:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Count()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class RequestsInFlight(Collector):
    """Requests being answered now: the HTTP edge adds and subtracts, a scrape reads."""

    def __init__(self) -> None:
        self.value = 0

    def collect(self) -> Iterator[Metric]:
        yield _gauge("http_requests_in_flight", "HTTP requests being answered now.", self.value)


class PoolCollector(Collector):
    """A SQLAlchemy pool's connections, read at scrape time (nothing is counted per request)."""

    def __init__(self, pool: Callable[[], Pool], queued: Callable[[], int]) -> None:
        self._pool = pool
        self._queued = queued

    def collect(self) -> Iterator[Metric]:
        pool = self._pool()
        if not isinstance(pool, QueuePool):
            return
        yield _gauge("hexpost_db_pool_size", "Connections the pool keeps open.", pool.size())
        yield _gauge(
            "hexpost_db_pool_checked_out", "Pool connections in use by a unit of work.", pool.checkedout()
        )
        yield _gauge(
            "hexpost_db_pool_overflow",
            "Connections open beyond the pool size (negative: that many of the pool not opened yet).",
            pool.overflow(),
        )
        yield _gauge(
            "hexpost_db_pool_waiting",
            "Units of work waiting for a connection.",
            waiting(pool) + self._queued(),
        )


def waiting(pool: QueuePool) -> int:
    """How many callers wait for a connection of a full pool.

    SQLAlchemy does not say; its asyncio queue (`AsyncAdaptedQueue._queue`, an `asyncio.Queue`
    created on first use) keeps its waiting getters in `_getters`. A test holds this to the
    SQLAlchemy in use (tests/unit/test_metrics.py)."""
    queue = vars(pool._pool).get("_queue")
    getters = getattr(queue, "_getters", None)
    if getters is None:
        return 0
    return sum(1 for getter in getters if not getter.done())


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Sampler:
    """Multiprocess mode: copies this process's own collectors into gauges of the shared files
    every `interval_seconds`; the pool's gauges are summed over live processes, the process
    metrics are kept per live process (a `pid` label)."""

    def __init__(self, collectors: Iterable[Collector], registry: CollectorRegistry) -> None:
        self._collectors = list(collectors)
        self._registry = registry
        self._gauges: dict[str, Gauge] = {}

    def sample(self) -> None:
        for collector in self._collectors:
            for family in collector.collect():
                mode = "liveall" if family.name.startswith("process_") else "livesum"
                for sample in family.samples:
                    self._gauge(sample.name, family.documentation, mode).set(sample.value)

    def _gauge(self, name: str, documentation: str, mode: Any) -> Gauge:
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = Gauge(name, documentation, registry=self._registry, multiprocess_mode=mode)
            self._gauges[name] = gauge
        return gauge

    async def run(self, interval_seconds: float) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("metrics: sampling this process failed")
            await asyncio.sleep(interval_seconds)


class MeasuredPostsCache(PostsCache):
    """A PostsCache that counts hits, misses and errors of the one it wraps."""

    def __init__(self, inner: PostsCache, metrics: Metrics) -> None:
        self._inner = inner
        lookups = metrics.cache_lookups
        self._hit, self._miss, self._lookup_error = (lookups.labels(result) for result in CACHE_RESULTS)
        self._errors = {operation: metrics.cache_errors.labels(operation) for operation in CACHE_OPERATIONS}

    async def lookup(self, user_id: int, view: str) -> CacheLookup:
        return self._count(await self._inner.lookup(user_id, view))

    async def lookup_all(self, user_id: int, views: Sequence[str]) -> Sequence[CacheLookup]:
        found = await self._inner.lookup_all(user_id, views)
        # Counted: lookups of post lists; a session check's entry is not a cached response.
        for view, each in zip(views, found, strict=True):
            if not is_session_view(view):
                self._count(each)
        return found

    def _count(self, found: CacheLookup) -> CacheLookup:
        if isinstance(found, CacheHit):
            self._hit.inc()
        elif isinstance(found, CacheMiss):
            self._miss.inc()
        else:
            self._lookup_error.inc()
            self._errors["lookup"].inc()
        return found

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        try:
            await self._inner.fill(user_id, view, version, payload)
        except CacheUnavailable:
            self._errors["fill"].inc()
            raise

    async def invalidate(self, user_id: int) -> None:
        try:
            await self._inner.invalidate(user_id)
        except CacheUnavailable:
            self._errors["invalidate"].inc()
            raise
