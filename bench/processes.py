"""Server processes pinned to the server's core, and their resident memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx

BIN = Path(sys.executable).parent
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@attrs.define
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)


@contextmanager
def pinned_server(
    argv: list[str], *, port: int, core: int, cwd: Path, env: dict[str, str], ready_path: str
) -> Iterator[Server]:
    """`argv` run under `taskset` (which execs it: the pid is the server's), up once `ready_path`
    answers 200, stopped with SIGTERM on leaving."""
    log = cwd / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["taskset", "-c", str(core), *argv], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(server, ready_path)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(server: Server, ready_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            if httpx.get(server.url + ready_path, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer within {START_TIMEOUT_SECONDS}s:\n{server.log.read_text()}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime, fields 14 and 15 of proc(5), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout: float = 60.0) -> None:
    """Waits until the process is idle (under 5% of a core over a quarter second): work a load
    generator left in flight (queued logins, requests waiting on a pool) must not be counted
    against the next run."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last < 0.0125:
            return
        last = now


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self.before = rss_mb(pid)
        self.peak = self.before
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_mb(self._pid))
            except (OSError, RuntimeError):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def behind_everything_else() -> Iterator[None]:
    """The calling thread runs only when nothing else on its core wants to (Linux's SCHED_IDLE).

    For a client that shares the load's core with wrk and is not what wrk measures. A busy loop
    beside wrk, at the same priority, took the small user's p99 from 0.8-1.1 ms to 4.3-5.6 ms with
    nothing more asked of the server; at niceness 19, one run in three had 14 ms; under SCHED_IDLE,
    0.9-1.4 ms (idle 1.0-1.6): a waking wrk always takes the core from such a thread at once.
    """
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def run_pinned(argv: list[str], core: int, env: dict[str, str] | None = None) -> str:
    """A command on `core` to completion; its standard output."""
    done = subprocess.run(
        ["taskset", "-c", str(core), *argv],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout
