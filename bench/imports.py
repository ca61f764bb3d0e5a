"""``python -m bench imports``: what importing the package and starting the CLI cost.

``import_s`` is the package's own cumulative import time as ``python -X importtime`` reports
it (the interpreter's start left out); ``cli_help_s`` the wall time of a whole
``surreal-store --help`` process, as a user waits for it. Each is the median of fresh
processes; ``python_start_s`` (an empty interpreter) is the floor both sit on. On a shared
machine wall times grow with the load; ``import_cpu_s`` and ``cli_help_cpu_s`` (the CPU time
of the same processes, the empty interpreter's subtracted) grow much less.

So that the host's speed can be told apart from the code's, the same run reports the import's
process against an empty interpreter's (``import_vs_python_start``) and against one that
imports pydantic, the floor of any pydantic library (``import_vs_pydantic``), by wall and by
CPU. The package loads its domain modules when first used: ``import_all_cpu_s`` is the CPU of
a process that imports every public name (``from surreal_store import *``), what a program
that uses all of them pays.
"""

from __future__ import annotations

import os
import re
import resource
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


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _wall_s(*args: str) -> tuple[float, float]:
    """The wall and CPU time of one fresh process ``python *args``."""
    t0, c0 = time.perf_counter(), _cpu()
    subprocess.run(
        [sys.executable, *args], capture_output=True, check=True, env=_env()
    )  # fmt: skip
    return time.perf_counter() - t0, _cpu() - c0


@register("imports")
async def run(scale: Scale) -> list[Figure]:
    """Import time of the package and start-up of the CLI (-X importtime, fresh processes)."""
    n = scale.pick(3, 9)

    def measure() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for _ in range(n):  # interleaved: a busy moment weighs on all of them alike
            for name, value in (
                ("start", _wall_s("-c", "pass")),
                ("pydantic", _wall_s("-c", "import pydantic")),
                ("plain", _wall_s("-c", "import surreal_store")),
                ("all", _wall_s("-c", "from surreal_store import *")),
                ("help", _wall_s("-m", "surreal_store", "--help")),
            ):
                out.setdefault(name, []).append(value[0])
                out.setdefault(name + "_cpu", []).append(value[1])
            out.setdefault("import", []).append(_import_s())
        return out

    m = {k: statistics.median(v) for k, v in (await anyio.to_thread.run_sync(measure)).items()}
    return [
        Figure("import_s", m["import"], "s", ("<=", 0.3)),
        Figure("cli_help_s", m["help"], "s", ("<=", 0.5)),
        Figure("python_start_s", m["start"], "s"),
        Figure("import_cpu_s", m["plain_cpu"] - m["start_cpu"], "s"),
        Figure("cli_help_cpu_s", m["help_cpu"] - m["start_cpu"], "s"),
        Figure("import_vs_python_start", m["plain"] / m["start"], "x"),
        Figure("import_vs_pydantic", m["plain"] / m["pydantic"], "x"),
        Figure("import_vs_pydantic_cpu", m["plain_cpu"] / m["pydantic_cpu"], "x"),
        Figure("import_all_cpu_s", m["all_cpu"] - m["start_cpu"], "s"),
    ]
