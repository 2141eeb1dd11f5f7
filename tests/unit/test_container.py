"""How the composition root sizes what the settings leave open."""

from __future__ import annotations

import subprocess
import sys

import pytest

from entrypoints.bootstrap import hashing_threads
from entrypoints.container import argon2_hasher
from entrypoints.settings import Settings


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_hashing_leaves_one_core_to_the_event_loop(cores: int, threads: int) -> None:
    assert hashing_threads(Settings(), cores) == threads


def test_configured_hashing_threads_are_taken_as_they_are() -> None:
    assert hashing_threads(Settings(argon2_threads=4), 2) == 4


def test_the_default_argon2id_parameters_are_owasps_minimum() -> None:
    hasher = argon2_hasher(Settings())

    assert (hasher.memory_cost, hasher.time_cost, hasher.parallelism) == (19_456, 2, 1)
    assert hasher.type.name == "ID"


@pytest.mark.parametrize(
    "weaker", [{"argon2_memory_kib": 19_455}, {"argon2_time_cost": 1}, {"argon2_parallelism": 0}]
)
def test_parameters_below_owasps_minimum_are_refused(weaker: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="argon2"):
        Settings(**weaker)  # type: ignore[arg-type]


def test_the_embedded_default_never_loads_a_redis_client() -> None:
    # A process of its own: the test session has loaded redis-py already.
    script = (
        "import sys\n"
        "from entrypoints.container import Container\n"
        "from entrypoints.http.app import create_app\n"
        "from entrypoints.settings import Settings\n"
        "settings = Settings(_env_file=None, database_url='memory://', cache_url='memory://')\n"
        "create_app(Container(settings=settings))\n"
        "print('redis' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"
