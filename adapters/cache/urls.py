"""Redis URLs, parsed without loading a Redis client: the settings check them in every process,
including those configured without Redis."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import attrs

# `redis+cluster://[user:password@]host:port[,host:port...]` names a Redis Cluster by some of its
# nodes (the client discovers the rest); `rediss+cluster://` is the same over TLS.
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


@attrs.frozen
class ClusterUrl:
    nodes: tuple[tuple[str, int], ...]
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> ClusterUrl | None:
        """None for a URL that does not name a cluster; ValueError for a malformed cluster URL."""
        parts = urlsplit(url)
        if parts.scheme not in CLUSTER_SCHEMES:
            return None
        if parts.path not in ("", "/", "/0") or parts.query or parts.fragment:
            raise ValueError("a Redis Cluster URL names nodes only (a cluster has no databases but 0)")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        nodes = tuple(_host_port(node) for node in hosts.split(","))
        return cls(nodes, unquote(username) or None, unquote(password) or None, CLUSTER_SCHEMES[parts.scheme])


def _host_port(node: str) -> tuple[str, int]:
    host, colon, port = node.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a Redis Cluster node is host:port, not {node!r}")
    return host, int(port)
