"""``python -m bench imports``: what importing the package and starting the CLI cost.

``import_s`` is the package's own cumulative import time as ``python -X importtime`` reports
it (the interpreter's start left out); ``cli_help_s`` the wall time of a whole
``surreal-store --help`` process, as a user waits for it. Each is the median of fresh
processes; ``python_start_s`` (an empty interpreter) is the floor both sit on.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio.to_thread

from ._harness import Figure, Scale, register

_ROOT = Path(__file__).resolve().parent.parent
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(_ROOT) + (os.pathsep + path if path else "")}


def _import_s() -> float:
    """The package's cumulative import time in one fresh process, from -X importtime."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import surreal_store"],
        capture_output=True, text=True, check=True, env=_env(),
    )  # fmt: skip
    for line in out.stderr.splitlines():
        m = _LINE.match(line)
        if m and m.group(2) == "surreal_store":
            return int(m.group(1)) / 1e6
    raise RuntimeError("no import time reported for surreal_store")


def _wall_s(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], capture_output=True, check=True, env=_env()
    )  # fmt: skip
    return time.perf_counter() - t0


@register("imports")
async def run(scale: Scale) -> list[Figure]:
    """Import time of the package and start-up of the CLI (-X importtime, fresh processes)."""
    n = scale.pick(3, 9)

    def measure() -> tuple[list[float], list[float], list[float]]:
        start, imports, helps = [], [], []
        for _ in range(n):  # interleaved: a busy moment weighs on all three alike
            start.append(_wall_s("-c", "pass"))
            imports.append(_import_s())
            helps.append(_wall_s("-m", "surreal_store", "--help"))
        return start, imports, helps

    start, imports, helps = await anyio.to_thread.run_sync(measure)
    return [
        Figure("import_s", statistics.median(imports), "s", ("<=", 0.3)),
        Figure("cli_help_s", statistics.median(helps), "s", ("<=", 0.5)),
        Figure("python_start_s", statistics.median(start), "s"),
    ]
