"""wrk, pinned to the load generator's core, reporting through a Lua `done` hook."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import attrs

MARKER = "BENCH_JSON "
# wrk's Lua `done` hook: latencies in microseconds; errors.status counts answers >= 400.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect, e.read, e.write, e.timeout))
end
"""


@attrs.frozen
class Load:
    """What wrk sends: one request, repeated."""

    path: str
    method: str = "GET"
    headers: dict[str, str] = attrs.field(factory=dict)
    body: str | None = None
    # When given, each request carries the next of these Authorization values in turn.
    authorizations: tuple[str, ...] = ()

    def script(self) -> str:
        lines = [f'wrk.method = "{self.method}"']
        for name, value in self.headers.items():
            lines.append(f'wrk.headers["{name}"] = [==[{value}]==]')
        if self.body is not None:
            lines.append(f"wrk.body = [==[{self.body}]==]")
        if self.authorizations:
            values = ", ".join(f"[==[{value}]==]" for value in self.authorizations)
            lines += [
                f"local authorizations = {{{values}}}",
                "local turn = 0",
                "request = function()",
                "  turn = turn % #authorizations + 1",
                '  wrk.headers["Authorization"] = authorizations[turn]',
                "  return wrk.format()",
                "end",
            ]
        return "\n".join(lines) + _DONE


@attrs.frozen
class WrkResult:
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    def as_dict(self) -> dict[str, float]:
        return attrs.asdict(self)

    @classmethod
    def of_windows(cls, windows: list[WrkResult]) -> WrkResult:
        """Short runs of one kind taken in turn with runs of another: their requests over their
        time, and the median of their p50s and of their p99s (one window the machine disturbed does
        not decide)."""
        requests = sum(window.requests for window in windows)
        seconds = sum(window.seconds for window in windows)
        return cls(
            requests=requests,
            seconds=round(seconds, 2),
            per_second=round(requests / seconds, 1) if seconds else 0.0,
            p50_ms=round(statistics.median(window.p50_ms for window in windows), 2),
            p99_ms=round(statistics.median(window.p99_ms for window in windows), 2),
            non_2xx=sum(window.non_2xx for window in windows),
            socket_errors=sum(window.socket_errors for window in windows),
        )


def command(
    base_url: str, load: Load, script: Path, connections: int, seconds: float, core: int
) -> list[str]:
    return [
        "taskset",
        "-c",
        str(core),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url + load.path,
    ]


@attrs.frozen
class Running:
    process: subprocess.Popen[str]
    script: Path

    def result(self) -> WrkResult:
        output, _ = self.process.communicate()
        self.script.unlink(missing_ok=True)
        for line in output.splitlines():
            if line.startswith(MARKER):
                raw = json.loads(line.removeprefix(MARKER))
                seconds = raw["duration_us"] / 1e6
                return WrkResult(
                    requests=raw["requests"],
                    seconds=round(seconds, 2),
                    per_second=round(raw["requests"] / seconds, 1),
                    p50_ms=round(raw["p50_us"] / 1000, 2),
                    p99_ms=round(raw["p99_us"] / 1000, 2),
                    non_2xx=raw["status"],
                    socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
                )
        raise RuntimeError(f"wrk printed no result (exit {self.process.returncode}):\n{output}")


def start(base_url: str, load: Load, connections: int, seconds: float, core: int) -> Running:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, prefix="bench-wrk-") as file:
        file.write(load.script())
    script = Path(file.name)
    process = subprocess.Popen(
        command(base_url, load, script, connections, seconds, core),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Running(process, script)


def run(base_url: str, load: Load, connections: int, seconds: float, core: int) -> WrkResult:
    return start(base_url, load, connections, seconds, core).result()
