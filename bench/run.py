"""One bench run: the ceilings, hexpost on the embedded default and on MySQL + Redis, every scenario.

The server under test (hexpost or a ceiling) runs pinned to one core, wrk and this harness to the
other. Each subject run sits between two runs of its ceiling, and is reported as a ratio to their
mean, so that what the other tenants of the machine take is taken from both alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import asyncmy
import attrs
import httpx
from redis import Redis
from sqlalchemy.engine import make_url

from bench import wrk
from bench.biglist import Readers
from bench.processes import (
    BIN,
    PeakRss,
    Server,
    free_port,
    pinned_server,
    run_pinned,
    settle,
)
from bench.report import Ratio, Row, write

API = "/api/v1"
MEBIBYTE = 2**20
# hexpost's pool with one worker: 20 connections, no overflow (entrypoints/bootstrap.py).
MYSQL_POOL_SIZE = 20
# The small user beside the big reads, measured in windows of a second.
SMALL_CONNECTIONS = 8
WINDOW_SECONDS = 1.0
# Limits and quotas being added to hexpost would turn a throughput run into a rate-limit test; unknown
# names are ignored by older versions.
LIMITS_OFF = {
    "HEXPOST_LOGIN_LIMITS": "off",
    "HEXPOST_REGISTER_LIMITS": "off",
    "HEXPOST_REFRESH_LIMITS": "off",
    "HEXPOST_POST_LIMITS": "off",
    "HEXPOST_MAX_POSTS_PER_USER": str(10**9),
    "HEXPOST_MAX_BYTES_PER_USER": str(10**15),
}
# argon2-cffi's own defaults (RFC 9106 "low memory"), for the login comparison.
ARGON2_LIBRARY_DEFAULTS = {
    "HEXPOST_ARGON2_MEMORY_KIB": "65536",
    "HEXPOST_ARGON2_TIME_COST": "3",
    "HEXPOST_ARGON2_PARALLELISM": "4",
}


@attrs.frozen
class Options:
    quick: bool
    out: Path
    mysql_url: str
    redis_url: str

    @property
    def seconds(self) -> float:
        return 2.0 if self.quick else 6.0

    @property
    def big_posts(self) -> int:
        return 8 if self.quick else 80

    @property
    def big_clients(self) -> tuple[int, ...]:
        return (8,) if self.quick else (8, 16)

    @property
    def window_pairs(self) -> int:
        """Windows of the small user beside the big reads, going and paused: as many of each. On
        this kind of machine one run's windows had p99s of 2.4-11.1 ms going and 2.5-10.2 paused:
        the median of six of each put one round in 48 over 2x (2.1x, in a run whose other rows were
        1.3-1.5x)."""
        return 2 if self.quick else 10


@attrs.frozen
class Cores:
    server: int
    load: int

    @classmethod
    def pick(cls) -> Cores:
        available = sorted(os.sched_getaffinity(0))
        return cls(available[0], available[1] if len(available) > 1 else available[0])


@attrs.frozen
class Account:
    user_id: int
    email: str
    password: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@attrs.frozen
class Accounts:
    reader: Account
    writer: Account
    login: Account
    big: Account


def register(url: str, name: str) -> Account:
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    password = f"bench {secrets.token_hex(8)}"
    response = httpx.post(
        f"{url}{API}/users/register", json={"email": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    return Account(body["id"], email, password, body["access_token"])


def add_posts(url: str, account: Account, count: int, size: int) -> None:
    with httpx.Client(base_url=url, headers=account.bearer, timeout=60) as client:
        for n in range(count):
            text = f"{n:08d}" + "b" * (size - 8)
            client.post(f"{API}/posts/add-post", json={"text": text}).raise_for_status()


def get_posts(account: Account) -> wrk.Load:
    return wrk.Load(f"{API}/posts/get-posts", headers=account.bearer)


def add_post(account: Account) -> wrk.Load:
    body = json.dumps({"text": "a" * 200})
    return wrk.Load(
        f"{API}/posts/add-post",
        "POST",
        {**account.bearer, "Content-Type": "application/json"},
        body,
    )


def add_post_by_each(accounts: list[Account]) -> wrk.Load:
    """add-post by each of `accounts` in turn: adds that no two share an account, so none are grouped."""
    body = json.dumps({"text": "a" * 200})
    return wrk.Load(
        f"{API}/posts/add-post",
        "POST",
        {"Content-Type": "application/json"},
        body,
        tuple(f"Bearer {account.token}" for account in accounts),
    )


def login(account: Account) -> wrk.Load:
    body = json.dumps({"email": account.email, "password": account.password})
    return wrk.Load(f"{API}/users/login", "POST", {"Content-Type": "application/json"}, body)


class Bench:
    def __init__(self, options: Options, bin_dir: Path = BIN) -> None:
        """`bin_dir`: the venv whose `hexpost` runs (another checkout's, to compare two builds)."""
        self.options = options
        self.bin_dir = bin_dir
        self.cores = Cores.pick()
        self.rows: list[Row] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="hexpost-bench-"))
        self.ceiling: Server | None = None

    @property
    def login_seconds(self) -> float:
        """Logins are slow on purpose: a longer run counts enough of them."""
        return 2 * self.options.seconds

    # -- measuring ---------------------------------------------------------------------------

    def load(
        self, server: Server, load: wrk.Load, connections: int, seconds: float | None = None
    ) -> wrk.WrkResult:
        return wrk.run(server.url, load, connections, seconds or self.options.seconds, self.cores.load)

    def ceiling_run(self, connections: int) -> float:
        assert self.ceiling is not None
        return self.load(self.ceiling, wrk.Load("/"), connections).per_second

    def interleaved(
        self, config: str, scenario: str, server: Server, load: wrk.Load, connections: int, **extra: Any
    ) -> Row:
        """ceiling, subject, ceiling (and the named extra ceiling routes around the subject too)."""
        references: dict[str, list[float]] = {"ceiling": [self.ceiling_run(connections)]}
        routes: dict[str, tuple[Server, wrk.Load]] = extra.pop("routes", {})
        for name, (route_server, route_load) in routes.items():
            references[name] = [self.load(route_server, route_load, connections).per_second]
        result = self.load(server, load, connections)
        settle(server.process.pid)
        for name, (route_server, route_load) in routes.items():
            references[name].append(self.load(route_server, route_load, connections).per_second)
        references["ceiling"].append(self.ceiling_run(connections))
        row = self.row(config, scenario, connections, result, server, **extra)
        row.ratios = [Ratio.of(result.per_second, name, figures) for name, figures in references.items()]
        return row

    def row(
        self,
        config: str,
        scenario: str,
        connections: int,
        result: wrk.WrkResult,
        server: Server,
        **extra: Any,
    ) -> Row:
        row = Row(
            config,
            scenario,
            connections,
            result.per_second,
            result.p50_ms,
            result.p99_ms,
            result.non_2xx,
            result.socket_errors,
            round(server.rss_mb, 1),
            **extra,
        )
        self.rows.append(row)
        print(
            f"  {config:<13} {scenario:<40} c{connections:<5} {result.per_second:>9,.1f}/s "
            f"p99 {result.p99_ms:>8.2f} ms non-2xx {result.non_2xx}",
            flush=True,
        )
        return row

    # -- servers -----------------------------------------------------------------------------

    def hexpost_environment(
        self, directory: Path, port: int, database_url: str, cache_url: str, **more: str
    ) -> dict[str, str]:
        environment = {name: value for name, value in os.environ.items() if not name.startswith("HEXPOST_")}
        environment.update(
            HEXPOST_DATABASE_URL=database_url,
            HEXPOST_CACHE_URL=cache_url,
            HEXPOST_VAR_DIR=str(directory / "var"),
            HEXPOST_HOST="127.0.0.1",
            HEXPOST_PORT=str(port),
            HEXPOST_LOG_LEVEL="INFO",
            HEXPOST_JWT_SECRET=secrets.token_urlsafe(48),
            **LIMITS_OFF,
        )
        environment.update(more)
        return environment

    @contextmanager
    def hexpost(self, name: str, database_url: str | None, cache_url: str, **more: str) -> Iterator[Server]:
        directory = self.workdir / name
        directory.mkdir()
        database_url = database_url or f"sqlite+aiosqlite:///{directory / 'var' / 'hexpost.db'}"
        port = free_port()
        environment = self.hexpost_environment(directory, port, database_url, cache_url, **more)
        migrate = [str(self.bin_dir / "hexpost"), "migrate"]
        subprocess.run(migrate, cwd=directory, env=environment, check=True, capture_output=True)
        with pinned_server(
            [str(self.bin_dir / "hexpost"), "serve"],
            port=port,
            core=self.cores.server,
            cwd=directory,
            env=environment,
            ready_path="/healthz",
        ) as server:
            yield server

    @contextmanager
    def ceiling_server(self, *args: str) -> Iterator[Server]:
        port = free_port()
        with pinned_server(
            [sys.executable, "-m", "bench.ceiling", "--port", str(port), *args],
            port=port,
            core=self.cores.server,
            cwd=self.workdir,
            env=dict(os.environ),
            ready_path="/",
        ) as server:
            yield server

    # -- the scenarios -----------------------------------------------------------------------

    def storage_ceiling(self, server: Server, argv: list[str]) -> float:
        settle(server.process.pid)
        output = run_pinned(
            [sys.executable, "-m", "bench.dbceiling", "--seconds", f"{self.options.seconds:g}", *argv],
            self.cores.server,
        )
        per_second: float = json.loads(output)["per_second"]
        return per_second

    def accounts(self, url: str) -> Accounts:
        reader = register(url, "reader")
        add_posts(url, reader, 10, 200)
        httpx.get(f"{url}{API}/posts/get-posts", headers=reader.bearer, timeout=30).raise_for_status()
        big = register(url, "big")
        add_posts(url, big, self.options.big_posts, MEBIBYTE)
        return Accounts(reader, register(url, "writer"), register(url, "login"), big)

    def scenarios(
        self,
        config: str,
        server: Server,
        accounts: Accounts,
        storage_ceiling: Callable[[], float],
        redis_route: tuple[Server, wrk.Load] | None,
    ) -> None:
        reader, writer, user = accounts.reader, accounts.writer, accounts.login
        routes = {"redis route": redis_route} if redis_route else {}
        cached = self.interleaved(config, "cached get-posts", server, get_posts(reader), 64, routes=routes)
        cached.target = ">= 0.50 of ceiling" if not routes else ">= 0.30 of ceiling, >= 0.8 of redis route"
        by_name = {r.against: r.value for r in cached.ratios}
        cached.met = by_name["ceiling"] >= (0.30 if routes else 0.50) and (
            not routes or by_name["redis route"] >= 0.8
        )

        before = storage_ceiling()
        added = self.row(config, "add-post", 64, self.load(server, add_post(writer), 64), server)
        after = storage_ceiling()
        name = "asyncmy insert+commit" if routes else "sqlite3 WAL commit"
        added.ratios = [Ratio.of(added.per_second, name, [before, after])]
        floor = 0.25 if routes else 0.04
        added.target = f">= {floor} of {name}, 0 non-2xx"
        added.met = added.ratios[0].value >= floor and added.non_2xx == 0 and added.socket_errors == 0

        writers = [register(server.url, f"writer{n}") for n in range(64)]
        spread = self.row(
            config, "add-post, 64 accounts", 64, self.load(server, add_post_by_each(writers), 64), server
        )
        spread.ratios = [Ratio.of(spread.per_second, name, [before, after])]
        spread.target = "0 non-2xx"
        spread.met = spread.non_2xx == 0 and spread.socket_errors == 0

        self.row(
            config,
            "login (tuned argon2id)",
            16,
            self.load(server, login(user), 16, self.login_seconds),
            server,
        )

        idle = [self.load(server, get_posts(reader), 64)]
        settle(server.process.pid)
        storm = wrk.start(server.url, login(user), 16, self.options.seconds, self.cores.load)
        # Not self.load: the server is meant to be busy.
        during = wrk.run(server.url, get_posts(reader), 64, self.options.seconds, self.cores.load)
        storm.result()
        idle.append(self.load(server, get_posts(reader), 64))
        stormy = self.row(
            config, "cached get-posts during login storm", 64, during, server, note="16 conns logging in"
        )
        stormy.ratios = [Ratio.of(during.per_second, "idle", [run.per_second for run in idle])]
        idle_p99 = sum(run.p99_ms for run in idle) / len(idle)
        p99_factor = during.p99_ms / idle_p99 if idle_p99 else 0.0
        stormy.target = f">= 0.5 of idle, p99 <= 2x idle ({p99_factor:.1f}x)"
        stormy.met = stormy.ratios[0].value >= 0.5 and p99_factor <= 2.0

        wide = self.interleaved(config, "cached get-posts", server, get_posts(reader), 1024)
        wide.target = "0 non-2xx"
        wide.met = wide.non_2xx == 0 and wide.socket_errors == 0

        many = self.row(config, "add-post", 256, self.load(server, add_post(writer), 256), server)
        many.target = "0 non-2xx"
        many.met = many.non_2xx == 0 and many.socket_errors == 0

        self.big_list(config, server, reader, accounts.big)

        end = Row(config, "server RSS after the whole run", 0, None, rss_mb=round(server.rss_mb, 1))
        end.target = "<= 120 MB"
        end.met = end.rss_mb is not None and end.rss_mb <= 120
        self.rows.append(end)

    def big_list(self, config: str, server: Server, reader: Account, big: Account) -> None:
        """The small user's p99 while the big reads go is held against its p99 while they are paused
        (`in_windows`)."""
        idle = self.load(server, get_posts(reader), SMALL_CONNECTIONS)
        self.row(config, "small user's get-posts, idle, before the reads", SMALL_CONNECTIONS, idle, server)
        size = f"{self.options.big_posts} MiB list"
        for clients in self.options.big_clients:
            for cold in (False, True):
                settle(server.process.pid)
                with (
                    PeakRss(server.process.pid) as rss,
                    Readers(server.url, big.token, clients, cold=cold) as readers,
                ):
                    going, paused = self.in_windows(
                        server, get_posts(reader), SMALL_CONNECTIONS, readers.pause, readers.resume
                    )
                    reads = readers.stop()
                delta = rss.peak - rss.before
                kind = "cold" if cold else "warm"
                row = Row(
                    config,
                    f"get-posts of a {size}, {kind}",
                    clients,
                    round(reads.requests / reads.seconds, 2),
                    reads.p50_ms,
                    reads.p99_ms,
                    reads.non_2xx,
                    rss_mb=round(rss.peak, 1),
                    note=f"RSS +{delta:.0f} MB, {reads.cache_hits}/{reads.requests} hits",
                )
                small_p99, paused_p99 = going.p99_ms, paused.p99_ms
                p99_factor = small_p99 / paused_p99 if paused_p99 else 0.0
                small_errors = going.non_2xx + going.socket_errors + paused.non_2xx + paused.socket_errors
                row.target = (
                    f"RSS +< 64 MB, 0 non-2xx, small p99 <= 2x paused ({small_p99:.2f} against "
                    f"{paused_p99:.2f} ms, {p99_factor:.1f}x)"
                )
                row.met = delta < 64 and reads.non_2xx == 0 and small_errors == 0 and p99_factor <= 2.0
                self.rows.append(row)
                print(
                    f"  {config:<13} {row.scenario:<40} c{row.connections:<5} {row.per_second:>9,.2f}/s "
                    f"p99 {row.p99_ms:>8.1f} ms non-2xx {row.non_2xx} {row.note}; small p99 {small_p99} ms "
                    f"going, {paused_p99} ms paused: {p99_factor:.1f}x",
                    flush=True,
                )

    def in_windows(
        self,
        server: Server,
        load: wrk.Load,
        connections: int,
        pause: Callable[[], None],
        resume: Callable[[], None],
    ) -> tuple[wrk.WrkResult, wrk.WrkResult]:
        """`load` in windows of a second with a background load going and paused in turn (ABBA), and
        each kind's windows taken together. A background load on the server's core takes its share
        from one kind alone; the machine's other tenants, from both alike: on this kind of machine
        fourteen idle runs in a row at 8 connections, of 6 to 24 s, had p99s of 2.0-7.0 ms (two 6 s
        runs in a row: 4.1 and 7.0), so runs seconds apart cannot tell a 2x apart."""
        going: list[wrk.WrkResult] = []
        paused: list[wrk.WrkResult] = []
        for pair in range(self.options.window_pairs):
            for flowing in (True, False) if pair % 2 == 0 else (False, True):
                if flowing:
                    resume()
                else:
                    pause()
                    # What the background load left in flight is not the idle's.
                    settle(server.process.pid)
                window = self.load(server, load, connections, WINDOW_SECONDS)
                (going if flowing else paused).append(window)
        print(
            f"    p99 of the windows, going: {', '.join(str(window.p99_ms) for window in going)}; "
            f"paused: {', '.join(str(window.p99_ms) for window in paused)}",
            flush=True,
        )
        return wrk.WrkResult.of_windows(going), wrk.WrkResult.of_windows(paused)

    # -- the configurations ------------------------------------------------------------------

    def embedded(self) -> None:
        print("embedded default: SQLite + in-process cache", flush=True)
        with self.hexpost("embedded", None, "memory://") as server:
            sqlite_path = self.workdir / "ceiling.db"

            def sqlite_ceiling() -> float:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
                return self.storage_ceiling(server, ["sqlite", "--path", str(sqlite_path)])

            self.scenarios("embedded", server, self.accounts(server.url), sqlite_ceiling, None)
            tuned = next(r for r in self.rows if r.config == "embedded" and r.scenario.startswith("login"))
        with self.hexpost("embedded-argon2-defaults", None, "memory://", **ARGON2_LIBRARY_DEFAULTS) as server:
            user = register(server.url, "login")
            library = self.row(
                "embedded",
                "login (argon2-cffi defaults)",
                16,
                self.load(server, login(user), 16, self.login_seconds),
                server,
            )
        tuned.ratios = [Ratio.of(tuned.per_second, "argon2-cffi defaults", [library.per_second or 0.0])]
        tuned.target = ">= 4x argon2-cffi defaults"
        tuned.met = tuned.ratios[0].value >= 4

    def mysql_redis(self) -> None:
        print("MySQL + Redis", flush=True)
        prefix = f"hexpost-bench-{secrets.token_hex(4)}:"
        database_url = self.fresh_mysql_database()
        try:
            with ExitStack() as stack:
                server = stack.enter_context(
                    self.hexpost(
                        "mysql-redis", database_url, self.options.redis_url, HEXPOST_CACHE_KEY_PREFIX=prefix
                    )
                )
                accounts = self.accounts(server.url)
                reader = accounts.reader.user_id
                keys = [f"{prefix}{{u{reader}}}:version", f"{prefix}{{u{reader}}}:posts:v1"]
                args = ["--redis-url", self.options.redis_url]
                for key in keys:
                    args += ["--key", key]
                redis_route = stack.enter_context(self.ceiling_server(*args))
                mysql_ceiling = [
                    "mysql",
                    "--url",
                    database_url,
                    "--user-id",
                    str(accounts.writer.user_id),
                    "--pool-size",
                    str(MYSQL_POOL_SIZE),
                    "--concurrency",
                    "64",
                ]
                self.scenarios(
                    "mysql+redis",
                    server,
                    accounts,
                    lambda: self.storage_ceiling(server, mysql_ceiling),
                    (redis_route, wrk.Load("/redis")),
                )
        finally:
            self.cleanup(database_url, prefix)

    def fresh_mysql_database(self) -> str:
        """An empty database of its own on the MySQL server; its URL."""
        name = f"hexpost_bench_{secrets.token_hex(4)}"
        statement = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        asyncio.run(_admin(self.options.mysql_url, statement))
        return make_url(self.options.mysql_url).set(database=name).render_as_string(hide_password=False)

    def cleanup(self, database_url: str | None, prefix: str) -> None:
        """Drops the database and deletes the Redis keys a configuration made."""
        if database_url is not None:
            name = make_url(database_url).database
            asyncio.run(_admin(self.options.mysql_url, f"DROP DATABASE IF EXISTS `{name}`"))
        _delete_keys(self.options.redis_url, prefix)

    def run(self) -> Path:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
        os.sched_setaffinity(0, {self.cores.load})
        started = dt.datetime.now(dt.UTC)
        load_average = os.getloadavg()[0]
        with self.ceiling_server() as ceiling:
            self.ceiling = ceiling
            self.embedded()
            self.mysql_redis()
        meta = {
            "started": started.isoformat(timespec="seconds"),
            "seconds_per_run": self.options.seconds,
            "quick": self.options.quick,
            "cores": attrs.asdict(self.cores),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load_average,
            "commit": _git_head(),
        }
        header = (
            f"hexpost bench {started:%Y-%m-%d %H:%M} UTC, commit {meta['commit']}, "
            f"{self.options.seconds:g} s per run{' (quick)' if self.options.quick else ''}, server on core "
            f"{self.cores.server}, wrk on core {self.cores.load}, load average at start "
            f"{load_average:.1f}\n"
        )
        md, _ = write(self.options.out, f"bench-{started:%Y%m%dT%H%M%S}", header, self.rows, meta)
        return md


async def _admin(server_url: str, statement: str) -> None:
    url = make_url(server_url)
    connection = await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(statement)
    finally:
        connection.close()


def _delete_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _git_head() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"
