"""Export and import bundles on the real embedded engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from surreal_store import (
    SchemaError,
    Store,
    StoreStateError,
    ValidationError,
    bundles,
    memory,
    provenance,
)
from surreal_store._demo import seed

pytestmark = pytest.mark.anyio


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.suffix == ".jsonl"}


async def test_export_import_export_is_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bundle", tmp_path / "b.bundle"
    async with Store(f"surrealkv://{tmp_path / 'source'}") as source:
        await seed(source)
        decision = (await provenance.decisions_for_task(source, task="choose city"))[0].id
        summary = await source.query_required_single(
            "SELECT VALUE record::id(id) FROM memory WHERE kind = 'summary' "
            "ORDER BY content LIMIT 1;",
            str,
        )
        why_a = (await provenance.why(source, decision=decision)).to_dict()
        lineage_a = (await provenance.lineage(source, memory=summary)).to_dict()
        first = await bundles.export_bundle(source, a)
    assert first["tables"]["memory"]["records"] == 225
    assert first["tables"]["derived_from"]["relation"] is True
    async with Store(f"surrealkv://{tmp_path / 'copy'}") as copy:
        await bundles.import_bundle(copy, a)
        second = await bundles.export_bundle(copy, b)
        assert (await provenance.why(copy, decision=decision)).to_dict() == why_a
        assert (await provenance.lineage(copy, memory=summary)).to_dict() == lineage_a
        hits = await memory.recall(
            copy, text="Kyoto hotel", embedder=memory.HashingEmbedder(256), k=3
        )
        assert len(hits) == 3
        from surreal_store import Migrator

        assert (await Migrator(copy).drift()).ok  # events and the vector index are back
    volatile = {v.split(".")[0] for v in first["volatile"] if "." in v}
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    for name in fa:
        if name.removesuffix(".jsonl") in volatile:
            continue
        assert fa[name] == fb[name], name
    for table, meta in first["tables"].items():
        if table not in volatile:
            assert meta == second["tables"][table], table


async def test_import_refuses_a_foreign_schema_a_full_store_and_damage(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    async with Store(f"surrealkv://{tmp_path / 's'}") as s:
        await memory.remember(s, content="hello")
        manifest = await bundles.export_bundle(s, bundle)
        with pytest.raises(ValidationError, match="already holds"):
            await bundles.export_bundle(s, bundle)
        with pytest.raises(StoreStateError, match="not empty"):
            await bundles.import_bundle(s, bundle)
    other = dict(manifest)
    other["schema"] = manifest["schema"][:-1]
    foreign = tmp_path / "foreign"
    shutil.copytree(bundle, foreign)
    (foreign / "manifest.json").write_text(json.dumps(other))
    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged)
    with (damaged / "memory.jsonl").open("a") as f:
        f.write("{}\n")
    async with Store(f"surrealkv://{tmp_path / 'fresh'}") as fresh:
        with pytest.raises(SchemaError, match="schema"):
            await bundles.import_bundle(fresh, foreign)
        with pytest.raises(ValidationError, match="does not match"):
            await bundles.import_bundle(fresh, damaged)
        assert await fresh.query_required_single("RETURN count(SELECT id FROM memory);", int) == 0
        await bundles.import_bundle(fresh, bundle)
        assert (await memory.by_key(fresh, key="x")) == []
        assert await fresh.query_required_single("RETURN count(SELECT id FROM memory);", int) == 1


async def test_values_keep_their_types() -> None:
    import datetime as dt

    from surreal_store import RecordId
    from surreal_store.bundles import _dec, _enc

    value = {
        "link": RecordId("run_event", ["r", 3]),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC),
        "raw": b"\x00\xff",
        "null": None,
        "tricky": {"$rid": "not a link"},
        "nested": [1, 2.5, "x", {"a": True}],
    }
    back = _dec(json.loads(json.dumps(_enc(value))))
    assert back["link"] == value["link"] and back["raw"] == value["raw"]
    assert back["when"] == value["when"] and back["tricky"] == {"$rid": "not a link"}
    assert back["nested"] == value["nested"]
