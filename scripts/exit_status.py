"""How often a plain script that opens and closes a store exits with the engine's abort.

    python scripts/exit_status.py [--runs 200] [--store DIR]

Builds a demo-sized surrealkv store once (the demo history), then runs a small user script
``--runs`` times, each in a fresh interpreter: open the store with ``async with Store(...)``,
recall, read a lineage, close, and leave normally (no ``os._exit``). Prints the count of each
exit status; the engine's abort at interpreter exit shows as 134 (SIGABRT) or -6.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

USER_SCRIPT = textwrap.dedent(
    """
    import sys

    import anyio

    from surreal_store import Store, memory, provenance


    async def main() -> None:
        async with Store(sys.argv[1]) as store:
            space = await memory.get_space(store)
            embedder = memory.HashingEmbedder(space.dimension) if space else None
            hits = await memory.recall(store, text="hotel in Kyoto", embedder=embedder, k=5)
            await provenance.lineage(store, memory=hits[0].memory.id)
            print(len(hits))


    anyio.run(main, backend="asyncio")
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--store", type=Path, default=None, help="reuse this store directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.store or Path(tmp) / "store"
        url = f"surrealkv://{root}"
        if not root.exists():
            subprocess.run(
                [sys.executable, "-m", "surreal_store", "--url", url, "demo", "--quiet"],
                check=True,
            )
        script = Path(tmp) / "user_script.py"
        script.write_text(USER_SCRIPT)
        codes: collections.Counter[int] = collections.Counter()
        started = time.perf_counter()
        for i in range(args.runs):
            done = subprocess.run(
                [sys.executable, str(script), url], capture_output=True, text=True, check=False
            )
            codes[done.returncode] += 1
            if done.returncode != 0 and codes[done.returncode] == 1:
                tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                print(f"run {i + 1}: exit {done.returncode}: {tail}", file=sys.stderr)
        took = time.perf_counter() - started
    aborts = sum(n for code, n in codes.items() if code in (134, -6))
    print(f"{args.runs} runs in {took:.0f} s: exit statuses {dict(sorted(codes.items()))}")
    print(f"aborts: {aborts} of {args.runs}")
    sys.exit(1 if sum(n for code, n in codes.items() if code != 0) else 0)


if __name__ == "__main__":
    main()
