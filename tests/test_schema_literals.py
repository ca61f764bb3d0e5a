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
