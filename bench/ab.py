"""`python -m bench.ab OTHER_BIN [--runs N]`: cached get-posts (64 connections) of this checkout and
of another build, on the embedded default and on MySQL + Redis, pinned as `make bench` pins them.

OTHER_BIN is the `bin` directory of another checkout's venv (an earlier commit, say: `git worktree
add`, then `make .venv/.installed` there). Runs of the two alternate, `--runs` runs of 6 s each,
between two ceiling runs; the table gives each one's mean, its ratio to the ceiling and the ratio of
this build to the other: the before/after figures a change on the hot path is asked for.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
from contextlib import ExitStack
from pathlib import Path

from bench import wrk
from bench.processes import BIN, Server, settle
from bench.run import Bench, Options, add_posts, get_posts, register

CONNECTIONS = 64


def compare(builds: dict[str, Bench], config: str, runs: int) -> str:
    bench = builds["this"]
    with ExitStack() as stack:
        bench.ceiling = stack.enter_context(bench.ceiling_server())
        servers: dict[str, Server] = {}
        for label, build in builds.items():
            if config == "embedded":
                servers[label] = stack.enter_context(build.hexpost(f"{config}-{label}", None, "memory://"))
                continue
            database_url = bench.fresh_mysql_database()
            prefix = f"hexpost-ab-{secrets.token_hex(4)}:"
            stack.callback(bench.cleanup, database_url, prefix)
            redis_url = bench.options.redis_url
            servers[label] = stack.enter_context(
                build.hexpost(f"{config}-{label}", database_url, redis_url, HEXPOST_CACHE_KEY_PREFIX=prefix)
            )
        readers = {}
        for label, server in servers.items():
            readers[label] = register(server.url, "reader")
            add_posts(server.url, readers[label], 10, 200)
        ceilings = [bench.ceiling_run(CONNECTIONS)]
        figures: dict[str, list[wrk.WrkResult]] = {label: [] for label in builds}
        for _ in range(runs):
            for label, server in servers.items():
                settle(server.process.pid)
                figures[label].append(bench.load(server, get_posts(readers[label]), CONNECTIONS))
        ceilings.append(bench.ceiling_run(CONNECTIONS))
    ceiling = statistics.mean(ceilings)
    means = {label: statistics.mean(run.per_second for run in results) for label, results in figures.items()}
    cells = []
    for label, runs_of in figures.items():
        errors = sum(run.non_2xx + run.socket_errors for run in runs_of)
        p99 = statistics.median(run.p99_ms for run in runs_of)
        share = means[label] / ceiling
        cells.append(f"{means[label]:,.0f} ({share:.2f} of ceiling), p99 {p99:.1f} ms, {errors} errors")
    this, other = means["this"], means["other"]
    return f"| {config} | {' | '.join(cells)} | {this / other:.2f} | {ceiling:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("other_bin", type=Path, help="the bin directory of the other build's venv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mysql-url", default="mysql+asyncmy://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    options = Options(False, Path("var/bench"), args.mysql_url, args.redis_url)
    builds = {"this": Bench(options), "other": Bench(options, args.other_bin)}
    os.sched_setaffinity(0, {builds["this"].cores.load})
    this, other = BIN.parent.parent, args.other_bin.parent.parent
    print(f"| config | this ({this}) | other ({other}) | this / other | ceiling |")
    print("|---|---|---|--:|--:|")
    for config in ("embedded", "mysql+redis"):
        print(compare(builds, config, args.runs), flush=True)


if __name__ == "__main__":
    main()
