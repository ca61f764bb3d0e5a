"""``import surreal_store`` stays light: the SDK, numpy, tantivy and hnswlib load when a store
opens or its recall index is first used; the domain modules, pydantic-settings, the migrator
and asyncio when first used, not when the package is imported (every CLI command pays the
import). How long the import takes is measured by ``python -m bench imports``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import surreal_store

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "tantivy", "hnswlib", "surrealdb")
# The domain modules: the package's lazy names with no home module (test_exported_members
# checks that they are the domain modules and public).
DOMAIN = tuple(sorted(name for name, home in surreal_store._LAZY.items() if home is None))
# Loaded on first use: what a store or a command needs beyond the package's core.
LATER = (
    *(f"surreal_store.{name}" for name in DOMAIN),
    "surreal_store._config",  # pydantic-settings
    "surreal_store._migrate",
    "pydantic_settings",
    "asyncio",
    "importlib.metadata",  # pydantic's plugin loader, at its first schema build
)


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    modules: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return modules


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_importing_the_package_loads_none_of_the_heavy_dependencies() -> None:
    modules = _loaded_after("import surreal_store\nfrom surreal_store import memory, Store")
    assert "surreal_store" in modules
    assert _heavy(modules) == []


def test_the_package_and_its_store_load_nothing_before_it_is_used() -> None:
    modules = _loaded_after("import surreal_store\nfrom surreal_store import Store, RecordId")
    assert [m for m in LATER if m in modules] == []


def test_what_loads_later_is_the_same_object_under_every_name() -> None:
    code = (
        "import surreal_store as s, sys\n"
        "from surreal_store import *\n"
        "from surreal_store import _config, _migrate\n"
        f"assert all(sys.modules['surreal_store.' + n] is getattr(s, n) for n in {DOMAIN!r})\n"
        "assert s.Settings is _config.Settings is Settings\n"
        "assert s.Migrator is _migrate.Migrator and s.load_schema_files is load_schema_files\n"
        "assert s.Settings.__module__ == s.Migrator.__module__ == 'surreal_store'\n"
        "assert set(s.__all__) <= set(dir(s))\n"
        "later = {n for n, home in s._LAZY.items() if home == '._migrate'}\n"
        "assert later == set(_migrate.__all__), later ^ set(_migrate.__all__)\n"
    )
    _loaded_after(code)  # raises if an assertion fails
    for name in surreal_store.__all__:
        assert name in dir(surreal_store)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        surreal_store.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_the_cli_app_loads_none_of_them_either() -> None:
    modules = _loaded_after("from surreal_store._cli import app")
    assert _heavy(modules) == []


def test_the_cli_help_leaves_what_no_command_module_needs_at_its_top() -> None:
    # get_command builds every command and its options, as --help does.
    modules = _loaded_after(
        "from surreal_store._cli import app\nimport typer.main\ntyper.main.get_command(app)"
    )
    assert _heavy(modules) == []
    assert [m for m in ("pydantic_settings", "surreal_store._config") if m in modules] == []
    for package in ("graph", "provenance"):
        assert [m for m in modules if m.startswith(f"surreal_store.{package}.")] == []


def test_a_module_the_cli_loads_later_is_the_package_s_own() -> None:
    code = (
        "import sys\n"
        "from surreal_store._cli import _users, _reads\n"
        "import surreal_store\n"
        "assert _users.access is surreal_store.access is sys.modules['surreal_store.access']\n"
        "assert _users.access.ROLES\n"  # the first attribute read loads it
        "from surreal_store.access import ROLES\n"
        "assert _users.access.ROLES is ROLES\n"
        "assert _reads.runs.list_runs is surreal_store.runs.list_runs\n"
        "from surreal_store._cli import _graph\n"
        "assert _graph.DEFAULT_SCOPE is surreal_store.graph.DEFAULT_SCOPE\n"
    )
    _loaded_after(code)  # raises if an assertion fails


def test_an_embedded_store_leaves_the_sdk_s_http_clients_unloaded() -> None:
    """An embedded store loads the SDK's modules it uses, not the SDK package's ``__init__``
    (which loads aiohttp and requests); ``import surrealdb`` afterwards is the whole package,
    with the same classes the store uses."""
    code = (
        "import asyncio\n"
        "from surreal_store import Store, RecordId\n"
        "async def main():\n"
        "    async with Store('mem://') as s:\n"
        "        await s.execute('CREATE t:1 SET at = time::now(), d = 1s')\n"
        "        assert await s.query('SELECT VALUE id FROM t', RecordId) == [RecordId('t', 1)]\n"
        "asyncio.run(main())\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'requests')]\n"
    )
    modules = _loaded_after(code)
    assert "surrealdb.connections.async_embedded" in modules
    whole = (
        code + "import surrealdb\n"
        "from surrealdb.data.types.record_id import RecordID\n"
        "from surreal_store._engine import _sdk\n"
        "assert surrealdb.RecordID is RecordID is _sdk.RecordID\n"
        "assert surrealdb.AsyncSurreal and surrealdb.AsyncHttpSurrealConnection\n"
        "from surrealdb import AsyncWsSurrealConnection, SurrealError\n"
        "assert SurrealError is _sdk.SurrealError\n"
        "assert 'aiohttp' in sys.modules\n"
    )
    _loaded_after(whole)  # raises if an assertion fails
