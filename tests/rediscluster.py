"""A Redis Cluster of the tests' own: three masters without replicas or persistence, on spare ports,
in a temporary directory, stopped and removed afterwards. The shared Redis is never touched.

redis-server and redis-cli come from Debian's redis-server package (the Makefile installs it);
without them the tests skip, except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.hexpost_servers import free_port

MASTERS = 3
# How long a master may be silent before the others mark it failed: short, so a fault test does
# not wait for the default 15 s.
NODE_TIMEOUT_MS = 1000
START_SECONDS = 20.0


def binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        reason = "redis-server and redis-cli are needed for the Redis Cluster tests (make installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return server, cli


class ClusterNodeProcess:
    def __init__(self, server: str, directory: Path) -> None:
        self._server = server
        self.port = free_port()
        # The cluster bus port is chosen too: the default, port + 10000, may be taken or past 65535.
        self.bus_port = free_port()
        self.directory = directory / str(self.port)
        self.directory.mkdir()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self._server,
                "--port",
                str(self.port),
                "--cluster-port",
                str(self.bus_port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def kill(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait()
            self._process = None


class LocalRedisCluster:
    """`start()` creates the cluster and waits until every node reports it ok; `kill(i)` and
    `restart(i)` take one master down and bring it back empty, with its slots."""

    def __init__(self) -> None:
        server, self._cli = binaries()
        self._directory = Path(tempfile.mkdtemp(prefix="hexpost-cluster-"))
        self.nodes = [ClusterNodeProcess(server, self._directory) for _ in range(MASTERS)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                self._cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=START_SECONDS,
        )
        self.wait_until_ok()

    def _cluster_state(self, node: ClusterNodeProcess) -> str:
        info = subprocess.run(
            [self._cli, "-p", str(node.port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
        return next((line.split(":", 1)[1].strip() for line in info.splitlines() if ":" in line), "")

    def wait_until_ok(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if all(self._cluster_state(node) == "ok" for node in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def owner_of(self, slot: int) -> int:
        """The index in `nodes` of the master serving a hash slot."""
        listing = subprocess.run(
            [self._cli, "-p", str(self.nodes[0].port), "cluster", "nodes"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        ports = [node.port for node in self.nodes]
        for line in listing.splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rpartition(":")[2])
            for served in fields[8:]:
                first, _, last = served.partition("-")
                if int(first) <= slot <= int(last or first):
                    return ports.index(port)
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, index: int) -> None:
        self.nodes[index].start()
        self.wait_until_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self._directory, ignore_errors=True)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.connect(("127.0.0.1", port))
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not start on port {port}")
