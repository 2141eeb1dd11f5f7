"""HEXPOST_CACHE_URL: one Redis, or a Redis Cluster named by some of its nodes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis, RedisCluster

from adapters.cache.redis import create_client
from adapters.cache.urls import ClusterUrl
from entrypoints.settings import Settings


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    parsed = ClusterUrl.parse("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002")
    assert parsed == ClusterUrl(
        (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)), "app", "s@cret", tls=False
    )
    assert "s@cret" not in repr(parsed)
    tls = ClusterUrl.parse("rediss+cluster://cache.internal:6379/")
    assert tls == ClusterUrl((("cache.internal", 6379),), tls=True)


def test_urls_of_one_redis_are_not_cluster_urls() -> None:
    assert ClusterUrl.parse("redis://127.0.0.1:6379/0") is None
    assert ClusterUrl.parse("memory://") is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://10.0.0.1",
        "redis+cluster://10.0.0.1:port",
        "redis+cluster://10.0.0.1:7000,",
        "redis+cluster://10.0.0.1:70000",
        "redis+cluster://10.0.0.1:7000/1",
        "redis+cluster://10.0.0.1:7000?cluster=true",
    ],
)
def test_a_malformed_cluster_url_is_a_configuration_error(
    url: str, make_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(ValidationError, match="HEXPOST_CACHE_URL"):
        make_settings(cache_url=url)


async def test_the_client_matches_the_url() -> None:
    single = create_client("redis://127.0.0.1:6379/0", 0.5)
    cluster = create_client("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", 0.5)
    try:
        assert isinstance(single, Redis)
        assert isinstance(cluster, RedisCluster)
        assert {(node.host, node.port) for node in cluster.nodes_manager.startup_nodes.values()} == {
            ("127.0.0.1", 7000),
            ("127.0.0.1", 7001),
        }
    finally:
        await single.aclose()
        await cluster.aclose()


def test_settings_accept_a_cluster_url(make_settings: Callable[..., Settings]) -> None:
    url = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    assert make_settings(cache_url=url).cache_url == url
