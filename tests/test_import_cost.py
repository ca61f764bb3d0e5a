"""``import surreal_store`` stays light: the SDK, numpy, tantivy and hnswlib load when a store
opens or its recall index is first used, not when the package is imported (every CLI command
pays the import). How long the import takes is measured by ``python -m bench imports``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "tantivy", "hnswlib", "surrealdb")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    modules: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return modules


def test_importing_the_package_loads_none_of_the_heavy_dependencies() -> None:
    modules = _loaded_after("import surreal_store\nfrom surreal_store import memory, Store")
    assert "surreal_store" in modules
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_the_cli_app_loads_none_of_them_either() -> None:
    modules = _loaded_after("from surreal_store._cli import app")
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
