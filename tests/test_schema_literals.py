"""Names that live in two places, a Python Literal and a schema field type, must agree
(shared/SEED_NOTES.md: one source of truth for a type name, checked by a test)."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest

from surreal_store import Store, ci, releases, runs

pytestmark = pytest.mark.anyio

CASES: list[tuple[str, str, Any]] = [
    ("run", "status", runs.RunStatus),
    ("ci_run", "status", ci.CiStatus),
    ("release", "action", releases.Release.model_fields["action"].annotation),
]


@pytest.mark.parametrize(("table", "field", "literal"), CASES)
async def test_python_literals_match_the_schema(
    store: Store, table: str, field: str, literal: Any
) -> None:
    info = await store.query_required_single(f"INFO FOR TABLE {table}", dict)
    ddl = info["fields"][field]
    in_schema = set(re.findall(r"'([^']*)'", ddl.split(" TYPE ", 1)[1].split(" DEFAULT ")[0]))
    assert in_schema == set(get_args(literal)), ddl


async def test_edge_kinds_match_the_schema(store: Store) -> None:
    info = await store.query_required_single("INFO FOR TABLE child_of", dict)
    kinds = set(re.findall(r"'([^']*)'", info["fields"]["kind"]))
    assert kinds == {"normal", "merge", "fork"}  # the values commits.commit writes


def test_every_thrown_code_maps_to_a_typed_error() -> None:
    """Schema guards and domain queries THROW 'code: message'; the client turns each code into
    one of our errors. Every THROW in the schema files and the package must use a known code."""
    import re
    from pathlib import Path

    from surreal_store import StoreError, default_schema_dir
    from surreal_store._engine._answers import THROW_CODES

    package = Path(__file__).resolve().parent.parent / "surreal_store"
    texts = [p.read_text() for p in sorted(default_schema_dir().glob("*.surql"))]
    texts += [p.read_text() for p in sorted(package.glob("*.py"))]
    code_lines = [
        line
        for text in texts
        for line in text.splitlines()
        if not line.lstrip().startswith(("--", "#")) and "THROW" in line
    ]
    throws = [m for line in code_lines for m in re.findall(r"\bTHROW\s+([^\s{].*)", line)]
    assert len(throws) > 40
    codes = set()
    for thrown in throws:
        match = re.match(r"'([a-z_]+): ", thrown)
        assert match, f"a THROW without a code: {thrown}"
        codes.add(match.group(1))
    codes.discard("code")  # the docstring's own example
    assert codes - THROW_CODES.keys() == set()
    assert all(issubclass(cls, StoreError) for cls in THROW_CODES.values())
