"""Export and import bundles on the real embedded engine."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import anyio
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
    from surreal_store.bundles import decode_value as _dec
    from surreal_store.bundles import encode_value as _enc

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


def _rename_table(m: dict[str, Any], old: str = "memory", new: str = "memoryx") -> None:
    meta = m["tables"].pop(old)
    m["tables"][new] = {**meta, "file": f"{new}.jsonl"}


def _rename_key(m: dict[str, Any]) -> None:
    meta = m["tables"]["memory"]
    meta["rows"] = meta.pop("records")


def _more_records(m: dict[str, Any]) -> None:
    m["tables"]["memory"]["records"] += 1


def _drop_table(m: dict[str, Any]) -> None:
    del m["tables"]["derived_from"]


def _not_schema(m: dict[str, Any]) -> None:
    m["tables"]["memory"]["schema"] = False


def _wrong_type(m: dict[str, Any]) -> None:
    m["tables"]["memory"]["records"] = "12"


def _escape_file(m: dict[str, Any]) -> None:
    m["tables"]["memory"]["file"] = "../memory.jsonl"


_EDITS = {
    "table renamed": _rename_table,
    "key renamed": _rename_key,
    "count changed": _more_records,
    "table dropped": _drop_table,
    "schema flag flipped": _not_schema,
    "count as text": _wrong_type,
    "file outside": _escape_file,
}


async def _is_empty(store: Store) -> bool:
    info = await store.query_required_single("INFO FOR DB;", dict)
    for table in info["tables"]:
        if table in ("schema_migration", "schema_lock"):
            continue
        if await store.query(f"SELECT id FROM {table} LIMIT 1;", dict):
            return False
    return True


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo bundle for the module's tests (each edits a copy)."""
    root = tmp_path_factory.mktemp("exported")

    async def make() -> None:
        async with Store(f"surrealkv://{root / 'src'}") as s:
            await seed(s)
            await bundles.export_bundle(s, root / "good")

    anyio.run(make, backend="asyncio")
    return root / "good"


@pytest.mark.parametrize("edit", sorted(_EDITS))
@pytest.mark.parametrize("redigest", [False, True], ids=["as-edited", "digest-recomputed"])
async def test_an_edited_manifest_is_refused_before_anything_is_written(
    tmp_path: Path, exported: Path, edit: str, redigest: bool
) -> None:
    from surreal_store import BundleError
    from surreal_store.bundles import _manifest_digest

    bundle = tmp_path / "edited"
    shutil.copytree(exported, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    _EDITS[edit](manifest)
    if edit == "table renamed":
        (bundle / "memory.jsonl").rename(bundle / "memoryx.jsonl")
    if redigest:
        manifest["manifest_sha256"] = _manifest_digest(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    async with Store("mem://") as target:
        with pytest.raises(BundleError):
            await bundles.import_bundle(target, bundle)
        assert await _is_empty(target)


@pytest.mark.parametrize(
    "text", ["", "not json", "[]", '{"format": "surreal-store-bundle/2"}', '{"format": 2}']
)
async def test_a_manifest_that_is_no_manifest_is_refused(tmp_path: Path, text: str) -> None:
    from surreal_store import BundleError

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text(text)
    async with Store("mem://") as target:
        with pytest.raises(BundleError):
            await bundles.import_bundle(target, tmp_path / "b")
        assert await _is_empty(target)


async def test_a_forged_record_fails_the_import_and_leaves_the_store_empty(
    tmp_path: Path, exported: Path
) -> None:
    """Every file and the manifest forged consistently, but one record of derived_from (loaded
    late, after the node tables) is not of its table: the import fails and undoes itself."""
    from surreal_store import BundleError
    from surreal_store.bundles import _manifest_digest

    bundle = tmp_path / "forged"
    shutil.copytree(exported, bundle)
    file = bundle / "derived_from.jsonl"
    lines = file.read_bytes().splitlines(keepends=True)
    lines[-1] = lines[-1].replace(b'"derived_from"', b'"memory"', 1)
    file.write_bytes(b"".join(lines))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tables"]["derived_from"]["sha256"] = hashlib.sha256(b"".join(lines)).hexdigest()
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    async with Store("mem://") as target:
        with pytest.raises(BundleError, match="not a record of table derived_from"):
            await bundles.import_bundle(target, bundle)
        assert await _is_empty(target)
        from surreal_store import Migrator

        assert (await Migrator(target).drift()).ok  # guards back, no stray vector index


async def test_export_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    async with Store("mem://") as s:
        with pytest.raises(ValidationError, match="not empty"):
            await bundles.export_bundle(s, tmp_path / "notes")
        with pytest.raises(ValidationError, match="not a directory"):
            await bundles.export_bundle(s, tmp_path / "notes" / "todo.txt")
        await bundles.export_bundle(s, tmp_path / "fresh")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
