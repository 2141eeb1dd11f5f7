"""`python -m bench.profile [--mysql-redis] [--add-post]`: py-spy on a pinned hexpost serving cached
get-posts (or add-post by one account, 64 connections).

Writes the collapsed stacks and a flame graph under var/bench/ and prints where the server's time
went: the share of samples under each of the functions that matter on the hot path, and the
functions with the most samples of their own.
"""

from __future__ import annotations

import argparse
import collections
import secrets
import subprocess
import sys
from pathlib import Path

from bench import wrk
from bench.processes import BIN, settle
from bench.run import Bench, Options, add_post, add_posts, get_posts, register

# Inclusive shares worth watching, matched against frames as py-spy names them ("function (file)").
WATCHED = (
    "RequestLog.__call__",
    "AccessLog.log",
    "Logger.log",
    "request_ids",
    "uuid4",
    "ServerErrorMiddleware.__call__",
    "BodyLimit.__call__",
    "Admission.__call__",
    "ExceptionMiddleware.__call__",
    "Router.__call__",
    "get_posts (entrypoints",
    "GetPosts.execute",
    "lookup",
    "authenticated_user",
    "Response.__call__",
    "httptools_impl",
    "redis",
    "select",
)


def summary(collapsed: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for name in WATCHED:
            if any(name in frame for frame in frames):
                inclusive[name] += count
    lines = [f"{total} samples", "", "inclusive share:"]
    lines += [f"  {inclusive[name] / total:6.1%}  {name}" for name in WATCHED if inclusive[name]]
    lines += ["", "own samples:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument(
        "--mysql-redis", action="store_true", help="MySQL + Redis instead of the embedded default"
    )
    parser.add_argument("--add-post", action="store_true", help="add-post instead of cached get-posts")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    bench = Bench(Options(False, args.out, "mysql+asyncmy://root@127.0.0.1:3306", "redis://127.0.0.1:6379/0"))
    config = "mysql-redis" if args.mysql_redis else "embedded"
    if args.mysql_redis:
        database_url, cache_url = bench.fresh_mysql_database(), "redis://127.0.0.1:6379/0"
    else:
        database_url, cache_url = None, "memory://"
    prefix = f"hexpost-bench-{secrets.token_hex(4)}:"
    args.out.mkdir(parents=True, exist_ok=True)
    scenario = "add-post" if args.add_post else "get-posts"
    collapsed = args.out / f"profile-{config}-{scenario}.txt"
    try:
        with bench.hexpost(
            config, database_url, cache_url, HEXPOST_CACHE_KEY_PREFIX=prefix, HEXPOST_LOG_LEVEL=args.log_level
        ) as server:
            account = register(server.url, "reader")
            add_posts(server.url, account, 10, 200)
            load = add_post(account) if args.add_post else get_posts(account)
            wrk.run(server.url, load, 64, 2, bench.cores.load)
            settle(server.process.pid)
            running = wrk.start(server.url, load, 64, args.seconds + 2, bench.cores.load)
            subprocess.run(
                [
                    "taskset",
                    "-c",
                    str(bench.cores.load),
                    str(BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(server.process.pid),
                    "--duration",
                    f"{args.seconds:g}",
                    "--rate",
                    "500",
                    "--format",
                    "raw",
                    "--output",
                    str(collapsed),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
            result = running.result()
    finally:
        bench.cleanup(database_url, prefix)
    during = f"{result.per_second:,.0f} req/s during the profile (py-spy takes some of it)"
    print(f"{config}, {scenario}: {during}")
    print(summary(collapsed))
    print(f"collapsed stacks: {collapsed}", file=sys.stderr)


if __name__ == "__main__":
    main()
