"""``python -m bench [NAME ...] [--quick] [--only PART ...] [--json PATH]``: run benchmarks,
print a table, and write one flat JSON object of figure name -> number."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import anyio

from . import bundle, core, doors, graph, imports, ledger, memory, provenance, tenants, vcs  # noqa: F401  (each registers its benchmark)

with contextlib.suppress(ImportError):  # without the langgraph extra, no langgraph benchmark
    from . import langgraph  # noqa: F401
with contextlib.suppress(ImportError):  # without the langchain and mcp extras, none of theirs
    from . import integrations  # noqa: F401
from ._harness import REGISTRY, Figure, Scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(REGISTRY)}")
    parser.add_argument("--quick", action="store_true", help="small scale, for smoke runs")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PART",
        help="run only this part of a benchmark (repeatable; e.g. graph's neighbourhood)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    names = args.names or [name for name, bench in REGISTRY.items() if bench.default]
    scale = Scale(quick=args.quick, only=frozenset(args.only))
    figures: dict[str, float] = {}
    failed = False
    for name in names:
        bench = REGISTRY[name]
        print(f"== {name}: {bench.doc}", flush=True)
        t0 = time.perf_counter()
        results: list[Figure] = anyio.run(bench.run, scale, backend="asyncio")
        for f in results:
            value = f"{f.value:.4g} {f.unit}".rstrip()
            print(f"  {f.name:<36} {value:>18}  {f.verdict}", flush=True)
            figures[f.name] = f.value
            failed |= f.verdict.startswith("FAIL")
        print(f"  ({time.perf_counter() - t0:.1f}s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    # The embedded engine can abort interpreter shutdown (SIGABRT after all output): leave
    # with the real status once everything is written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
