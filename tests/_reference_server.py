"""The MCP reference memory server (``@modelcontextprotocol/server-memory`` on npm), installed
once into a cache folder with npm, for the tests that compare ``surreal-store mcp`` with it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGE = "@modelcontextprotocol/server-memory"
VERSION = "2026.8.31"
# Its nine tools, which the store's MCP server also serves.
NINE = frozenset(
    {
        "create_entities",
        "create_relations",
        "add_observations",
        "delete_entities",
        "delete_observations",
        "delete_relations",
        "read_graph",
        "search_nodes",
        "open_nodes",
    }
)


class Unavailable(Exception):
    """The reference server cannot be had here (the message says why)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "surreal-store" / "mcp-reference"


def reference_server(version: str = VERSION) -> Path:
    """The path of the reference server's ``dist/index.js``, installed with npm into the cache
    on first use (one installer at a time, published whole by a rename). Raises
    :class:`Unavailable` when node or npm is missing or the install fails (offline)."""
    given = os.environ.get("MCP_REFERENCE_SERVER")
    if given:
        if not Path(given).is_file():
            raise Unavailable(f"MCP_REFERENCE_SERVER={given} is not a file")
        return Path(given)
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed, so the reference server cannot run")
    root = cache_root()
    target = root / f"server-memory-{version}"
    script = target / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist"
    script = script / "index.js"
    if script.is_file():
        return script
    root.mkdir(parents=True, exist_ok=True)
    import fcntl  # POSIX: the tests that need the reference run where node does

    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if script.is_file():  # another process installed it meanwhile
            return script
        work = Path(tempfile.mkdtemp(prefix="install-", dir=root))
        try:
            done = subprocess.run(
                ["npm", "install", "--prefix", str(work), "--no-audit", "--no-fund",
                 "--no-save", f"{PACKAGE}@{version}"],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise Unavailable(f"npm install {PACKAGE}@{version} failed: {last}")
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(target)
            work.rename(target)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"npm install {PACKAGE}@{version} timed out") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not script.is_file():
        raise Unavailable(f"{PACKAGE}@{version} installed without dist/index.js")
    return script
