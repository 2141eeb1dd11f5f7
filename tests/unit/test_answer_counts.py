"""In one process the hot path counts in plain numbers (`AnswerCounts`, `LocalCounter`); a scrape must
read exactly what prometheus-client's own counter and histogram would show for the same counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from adapters.prometheus import (
    DURATION_BUCKETS,
    DURATION_HELP,
    DURATION_NAME,
    REQUESTS_HELP,
    REQUESTS_NAME,
    LocalCounter,
    Metrics,
)

ANSWERS = [
    ("/api/v1/posts/get-posts", "GET", 200, 0.0004),
    ("/api/v1/posts/get-posts", "GET", 200, 0.001),  # on a bucket's bound: counted in that bucket
    ("/api/v1/posts/get-posts", "GET", 304, 0.0011),
    ("/api/v1/posts/get-posts", "GET", 200, 0.02),
    ("/api/v1/posts/add-post", "POST", 200, 0.25),
    ("/api/v1/posts/add-post", "POST", 503, 12.5),  # past the last bound: only +Inf
    ("/api/v1/posts/get-posts", "GET", 200, 0.0),
]


def http_lines(exposition: bytes) -> list[str]:
    """The lines of the HTTP families, their HELP and TYPE lines included."""
    return sorted(
        line
        for line in exposition.decode().splitlines()
        if line.removeprefix("# HELP ").removeprefix("# TYPE ").startswith("http_") and "_created" not in line
    )


def test_a_scrape_reads_what_prometheus_clients_own_metrics_would_show() -> None:
    metrics = Metrics()
    reference = CollectorRegistry()
    requests = Counter(REQUESTS_NAME, REQUESTS_HELP, ["route", "method", "status"], registry=reference)
    duration = Histogram(
        DURATION_NAME, DURATION_HELP, ["route", "method"], buckets=DURATION_BUCKETS, registry=reference
    )

    for route, method, status, seconds in ANSWERS:
        metrics.answers(route, method, status)(seconds)
        requests.labels(route, method, str(status)).inc()
        duration.labels(route, method).observe(seconds)

    ours = [line for line in http_lines(metrics.exposition()) if "http_requests_in_flight" not in line]
    assert ours == http_lines(generate_latest(reference))
    assert 'http_requests_total{method="GET",route="/api/v1/posts/get-posts",status="200"} 4.0' in ours


def test_the_same_answer_is_counted_by_one_recorder() -> None:
    metrics = Metrics()

    metrics.answers("/healthz", "GET", 200)(0.001)
    metrics.answers("/healthz", "GET", 200)(0.001)

    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in http_lines(
        metrics.exposition()
    )


def test_a_local_counter_reads_as_prometheus_clients_counter() -> None:
    ours, reference = CollectorRegistry(), CollectorRegistry()
    local = LocalCounter("http_things_total", "Things.", ["result"], registry=ours)
    counter = Counter("http_things_total", "Things.", ["result"], registry=reference)

    for result, amount in [("hit", 1), ("miss", 1), ("hit", 2.5), ("error", 0)]:
        local.labels(result).inc(amount)
        counter.labels(result).inc(amount)

    assert http_lines(generate_latest(ours)) == http_lines(generate_latest(reference))
