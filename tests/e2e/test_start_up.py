"""What a server process does before its first request, so that the first requests do not pay for it
on the event loop, with every other request waiting behind them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hexpost_servers import server_environment

ROOT = Path(__file__).resolve().parents[2]

# The app as `hexpost serve` makes it, through its start-up (lifespan) only.
SCRIPT = """
import asyncio, sys
from entrypoints.asgi import create
app = create()
before = "anyio._backends._asyncio" in sys.modules
async def main():
    async with app.router.lifespan_context(app):
        print(before, "anyio._backends._asyncio" in sys.modules)
asyncio.run(main())
"""


def _printed_by(script: str, tmp_path: Path) -> list[str]:
    """What `script` printed, run in a fresh interpreter with a server's environment."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=server_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_start_up_loads_the_backend_of_the_task_groups_streamed_answers_run_in(tmp_path: Path) -> None:
    assert _printed_by(SCRIPT, tmp_path) == ["False", "True"]


FREEZING = """
import asyncio, gc
from entrypoints.asgi import create
app = create()
before = gc.get_freeze_count()
async def main():
    async with app.router.lifespan_context(app):
        print(before, gc.get_freeze_count(), len(gc.get_objects()))
asyncio.run(main())
"""


def test_start_up_puts_what_it_made_out_of_the_collectors_sight(tmp_path: Path) -> None:
    before, frozen, tracked = (int(figure) for figure in _printed_by(FREEZING, tmp_path))
    assert before == 0
    # A full collection now walks what requests made, not the modules and the app.
    assert frozen > 10 * tracked
