"""Acknowledged writes survive a killed process (embedded surrealkv store, SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from surreal_store import Store, runs

_WRITER = textwrap.dedent(
    """
    import sys, anyio
    from surreal_store import Store, runs

    async def main():
        async with Store(sys.argv[1]) as store:
            await runs.create_run(store, spec_digest="7" * 64, agent_name="w", run_id="crash")
            print("ready", flush=True)
            i = 0
            while True:
                i += 1
                if i % 5 == 0:
                    seqs = await runs.append_events(
                        store, run_id="crash", events=[("batch", {"i": i})] * 20
                    )
                else:
                    seqs = [(await runs.append_event(store, run_id="crash", kind="one")).seq]
                print(" ".join(map(str, seqs)), flush=True)

    anyio.run(main, backend="asyncio")
    """
)


def _append_until_killed(url: str, at_least: int) -> list[int]:
    """Run the writer, read its acknowledgements, SIGKILL it mid-stream; return what it acked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURREAL_STORE_")}
    acknowledged: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            while len(acknowledged) < at_least:
                line = proc.stdout.readline()
                assert line, "the writer stopped early"
                acknowledged.extend(int(s) for s in line.split())
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return acknowledged


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'kv'}"
    acknowledged = _append_until_killed(url, 600)

    async def stored_seqs() -> list[int]:
        async with Store(url) as store:
            return [e.seq for e in await runs.events(store, run_id="crash")]

    stored = anyio.run(stored_seqs, backend="asyncio")
    assert set(acknowledged) <= set(stored), "an acknowledged append was lost"
    # Batches are all or nothing, and seqs stay contiguous, even when cut off by a kill.
    assert stored == list(range(1, len(stored) + 1))


_PLAIN_SCRIPTS = {
    # Closes its store and leaves normally: the engine's exit hook lets its threads settle.
    "closed": """
        async with Store(sys.argv[1]) as store:
            await memory.remember(store, content="closed properly")
    """,
    # Forgets to close: the exit hook closes the store before the interpreter goes.
    "left open": """
        store = Store(sys.argv[1])
        await store.open()
        await memory.remember(store, content="left open")
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_PLAIN_SCRIPTS))
def test_a_plain_script_exits_zero_and_keeps_its_writes(case: str, tmp_path: Path) -> None:
    body = textwrap.indent(textwrap.dedent(_PLAIN_SCRIPTS[case]).strip(), "    ")
    script = (
        "import sys\nimport anyio\nfrom surreal_store import Store, memory\n\n"
        f"async def main():\n{body}\n\nanyio.run(main, backend='asyncio')\n"
    )
    url = f"surrealkv://{tmp_path / 'store'}"
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

    async def read() -> int:
        async with Store(url) as store:
            return await store.query_required_single("RETURN count(SELECT id FROM memory);", int)

    assert anyio.run(read, backend="asyncio") == 1
