"""`python -m bench [--quick]`: see bench/run.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.run import Bench, Options


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="hexpost under load, beside its ceilings"
    )
    parser.add_argument("--quick", action="store_true", help="short runs and a small big list: a smoke test")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--mysql-url", default="mysql+asyncmy://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    report = Bench(Options(args.quick, args.out, args.mysql_url, args.redis_url)).run()
    print()
    print(report.read_text())
    print(f"written: {report} and {report.with_suffix('.json')}")


if __name__ == "__main__":
    main()
