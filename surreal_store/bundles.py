"""Portable, schema-versioned bundles: a store's records as JSON Lines, one file per table, and
a manifest (schema version and checksums of the files it was made with, engine and tool
versions, record counts, SHA-256 of every file).

::

    manifest = await bundles.export_bundle(store, "backup/")
    await bundles.import_bundle(fresh_store, "backup/")

Both stream: memory stays bounded by one page (1,000 records), whatever the store's size.
An import goes into an empty store at the same schema version, and reproduces every record and
edge with its id. Values keep their types: record links, datetimes to the nanosecond, bytes,
JSON nulls. Exporting the imported store gives the same files byte for byte; only the fields
named in the manifest's ``volatile`` list (its own timestamp and fields the schema recomputes
on every write) may differ.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from ._api import public
from ._client import Store
from ._engine import precise_datetime
from ._errors import BundleError, SchemaError, StoreStateError, ValidationError
from ._ids import LOWER_HEX64
from ._migrate import Migrator
from ._surql import validate_identifier
from ._types import JSON_NULL, RecordId, canonical_json
from ._version import __version__

__all__ = ["FORMAT", "Manifest", "export_bundle", "import_bundle"]

FORMAT: Final = "surreal-store-bundle/2"
MANIFEST: Final = "manifest.json"
_PAGE: Final = 1000
# The migrator's own tables: the target store has its own, checked against the manifest. The
# recall index's identity belongs to the store it is beside, not to the data.
_SKIP: Final = {"schema_migration", "schema_lock", "memory_index"}
# Fields the schema recomputes on every write (VALUE time::now()): not reproducible.
_VOLATILE: Final = [
    "exported_at",
    "branch.updated_at",
    "embedding_space.updated_at",
    # The index's build state belongs to the store, not to the data.
    "embedding_space.indexed",
    "embedding_space.unindexed",
    "embedding_space.built_at",
]

Manifest = dict[str, Any]
Progress = Callable[[str, int], Awaitable[None] | None]


# -- values <-> JSON ---------------------------------------------------------------------------


_PLAIN: Final = (str, int, bool)


def encode_value(value: Any) -> Any:
    """A stored value as the bundle's JSON: tagged objects for the types JSON lacks."""
    if type(value) in _PLAIN:
        return value
    if type(value) is dict:
        out = {k: v if type(v) in _PLAIN else encode_value(v) for k, v in value.items()}
        # A stored object whose keys look like our tags is wrapped, so it reads back as itself.
        return {"$obj": out} if any(k[:1] == "$" for k in out) else out
    if value is None or value is JSON_NULL:
        return None  # inside a record, only JSON null is None: NONE fields are absent
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"$float": repr(value)} if value != value or value in (1e309, -1e309) else value
    if isinstance(value, RecordId):
        return {"$rid": [value.table, encode_value(value.key)]}
    if isinstance(value, dt.datetime):
        ns = getattr(value, "nanosecond", 0)
        if value.tzinfo is not None and value.utcoffset():
            value = value.astimezone(dt.UTC)
        # isoformat is C code; strftime would be the costliest step of an export.
        plain = value.replace(tzinfo=None).isoformat(timespec="microseconds")
        return {"$dt": f"{plain}{ns:03d}Z"}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dt.timedelta):
        return {"$dur": round(value.total_seconds() * 1_000_000)}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    if isinstance(value, dict):
        out = {str(k): encode_value(v) for k, v in value.items()}
        # A stored object whose keys look like our tags is wrapped, so it reads back as itself.
        return {"$obj": out} if any(k.startswith("$") for k in out) else out
    raise ValidationError(f"cannot export a {type(value).__name__} value: {value!r}")


def decode_value(value: Any) -> Any:
    """The value that :func:`encode_value` wrote, with its type."""
    if value is None:
        return JSON_NULL
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "$rid":
            return RecordId(body[0], decode_value(body[1]))
        if tag == "$dt":
            return precise_datetime(body)
        if tag == "$bytes":
            return base64.b64decode(body)
        if tag == "$dur":
            return dt.timedelta(microseconds=body)
        if tag == "$dec":
            return Decimal(body)
        if tag == "$uuid":
            return UUID(body)
        if tag == "$float":
            return float(body)
        if tag == "$obj":
            return {k: decode_value(v) for k, v in body.items()}
    return {k: decode_value(v) for k, v in value.items()}


def _line(record: dict[str, Any]) -> bytes:
    return (
        json.dumps(encode_value(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        + "\n"
    ).encode()


# -- the store's tables ------------------------------------------------------------------------


async def _tables(store: Store, defined: set[str]) -> list[tuple[str, bool]]:
    """``(table, is_relation)`` for every exported table: nodes first, then edges, by name.

    An agent may not list the database's tables: its bundle holds the schema's tables (of
    ``defined``), each read as it may read it, so records beyond its permissions stay out."""
    if store.signed_in_as.kind == "agent":
        relations = _relations(store)
        found = [(name, name in relations) for name in defined if name not in _SKIP]
    else:
        info = await store.query_required_single("INFO FOR DB;", dict, idempotent=True)
        found = [
            (name, "TYPE RELATION" in str(ddl))
            for name, ddl in info.get("tables", {}).items()
            if name not in _SKIP
        ]
    return sorted(found, key=lambda t: (t[1], t[0]))


_RELATION = re.compile(
    r"^\s*DEFINE\s+TABLE\s+(?:OVERWRITE\s+|IF\s+NOT\s+EXISTS\s+)?(\w+)\s+TYPE\s+RELATION",
    re.M | re.I,
)


def _relations(store: Store) -> set[str]:
    return {
        name
        for f in Migrator(store, schema_dir=store.schema_dir).files
        for name in _RELATION.findall(f.text)
    }


async def _schema(store: Store) -> list[dict[str, Any]]:
    applied = await Migrator(store).applied()
    return [{"version": m.version, "name": m.name, "checksum": m.checksum} for m in applied]


# -- export ------------------------------------------------------------------------------------


@public
async def export_bundle(
    store: Store, path: str | Path, *, progress: Progress | None = None
) -> Manifest:
    """Write every record of ``store`` to the directory ``path`` (created; it must not hold a
    bundle already) and return the manifest.

    Tables are read page by page, not in one snapshot: export a store nobody writes to, or
    expect records written meanwhile to be in the bundle or not, table by table."""
    root = anyio.Path(path)
    if await (root / MANIFEST).exists():
        raise ValidationError(f"{root} already holds a bundle")
    if await root.exists():
        if not await root.is_dir():
            raise ValidationError(f"{root} is not a directory")
        if [entry async for entry in root.iterdir()]:
            raise ValidationError(f"{root} is not empty; export into a new or empty directory")
    await root.mkdir(parents=True, exist_ok=True)
    schema = await _schema(store)
    defined = _schema_tables(store, schema)
    tables: dict[str, Any] = {}
    for table, relation in await _tables(store, defined):
        name = validate_identifier(table, what="table")
        first = f"SELECT * FROM {name} ORDER BY id LIMIT {_PAGE};"
        after = f"SELECT * FROM {name} WHERE id > $after ORDER BY id LIMIT {_PAGE};"
        digest = hashlib.sha256()
        count = 0
        async with await anyio.open_file(root / f"{table}.jsonl", "wb") as out:
            last: Any = None
            while True:
                # execute: rows come converted, and need no validation to be written out.
                results = await store.execute(
                    first if last is None else after, idempotent=True, after=last
                )
                rows: list[dict[str, Any]] = results[-1] or []
                page = b"".join(_line(row) for row in rows)
                digest.update(page)
                await out.write(page)
                count += len(rows)
                if progress is not None:
                    maybe = progress(table, len(rows))
                    if maybe is not None:
                        await maybe
                if len(rows) < _PAGE:
                    break
                last = rows[-1]["id"]
        tables[table] = {
            "file": f"{table}.jsonl",
            "records": count,
            "sha256": digest.hexdigest(),
            "relation": relation,
            "schema": table in defined,
        }
    manifest: Manifest = {
        "format": FORMAT,
        "schema": schema,
        "engine_version": store.engine_version,
        "tool_version": __version__,
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "volatile": _VOLATILE,
        "tables": tables,
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    await (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _manifest_digest(manifest: Manifest) -> str:
    """SHA-256 of the manifest's canonical JSON, its own digest left out."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body, what="the manifest").encode()).hexdigest()


_DEFINED = re.compile(
    r"^\s*DEFINE\s+TABLE\s+(?:OVERWRITE\s+|IF\s+NOT\s+EXISTS\s+)?(\w+)", re.M | re.I
)
_REMOVED = re.compile(r"^\s*REMOVE\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)", re.M | re.I)


def _schema_tables(store: Store, schema: list[dict[str, Any]]) -> set[str]:
    """The tables that the applied schema files (``schema``, as :func:`_schema` lists them)
    define, the migrator's own left out."""
    applied = {m["version"] for m in schema}
    tables: set[str] = set()
    for f in Migrator(store, schema_dir=store.schema_dir).files:
        if f.version in applied:
            tables |= set(_DEFINED.findall(f.text))
            tables -= set(_REMOVED.findall(f.text))
    return tables - _SKIP


# -- import ------------------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    file: str
    records: int = Field(ge=0)
    sha256: str = Field(pattern=LOWER_HEX64.pattern)
    relation: bool
    schema_: bool = Field(alias="schema")


class _Migration(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    name: str
    checksum: str


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    format: str
    schema_: list[_Migration] = Field(alias="schema")
    engine_version: str
    tool_version: str
    exported_at: str
    volatile: list[str]
    tables: dict[str, _Table]
    manifest_sha256: str


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of the bundle at ``path``, checked for its format, its shape and its own
    digest (:class:`BundleError` if any is off)."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise BundleError(f"{path} holds no bundle (no {MANIFEST})")
    try:
        manifest: Any = json.loads(file.read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{file}: not a readable bundle manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"{file}: not a {FORMAT} bundle (format {found!r})")
    try:
        checked = _Manifest.model_validate(manifest)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise BundleError(f"{file}: the manifest is damaged or was edited ({problems})") from None
    for table, meta in checked.tables.items():
        try:
            validate_identifier(table, what="table")
        except ValidationError as exc:
            raise BundleError(f"{file}: {exc}") from None
        if meta.file != f"{table}.jsonl":
            raise BundleError(f"{file}: table {table!r} and its file {meta.file!r} do not match")
    return manifest


def _check_manifest(manifest: Manifest, path: Path) -> None:
    if manifest["manifest_sha256"] != _manifest_digest(manifest):
        raise BundleError(
            f"{path / MANIFEST} does not match its digest: it was edited after the export"
        )


def _check_tables(manifest: Manifest, defined: set[str], version: str) -> None:
    """Tables marked as the schema's must be the schema's, and all of them; the others must
    not take a schema table's name."""
    listed = manifest["tables"]
    for table, meta in listed.items():
        if meta["schema"] and table not in defined:
            raise BundleError(
                f"the bundle has table {table}, which schema {version} does not define"
            )
        if not meta["schema"] and table in defined:
            raise BundleError(
                f"the bundle's table {table} is marked as not the schema's, but it is"
            )
    missing = sorted(t for t in defined if t not in listed)
    if missing:
        raise BundleError(f"the bundle lacks table(s) {', '.join(missing)} of schema {version}")


def _lines(file: Path) -> Iterator[bytes]:
    with file.open("rb") as f:
        yield from f


def _check_files(root: Path, manifest: Manifest) -> None:
    for table, meta in manifest["tables"].items():
        validate_identifier(table, what="table")
        digest, count = hashlib.sha256(), 0
        file = root / meta["file"]
        if not file.is_file():
            raise BundleError(f"the bundle lacks {meta['file']}")
        for line in _lines(file):
            digest.update(line)
            count += 1
        if digest.hexdigest() != meta["sha256"] or count != meta["records"]:
            raise BundleError(f"{meta['file']} does not match the manifest (damaged?)")


@public
async def import_bundle(
    store: Store, path: str | Path, *, progress: Progress | None = None
) -> Manifest:
    """Load the bundle at ``path`` into ``store``, which must be empty and at the bundle's
    schema version; returns the manifest.

    Every file is checked against the manifest before anything is written. The schema's
    events (the guards) are suspended while records go in, since they were checked when the
    records were first written and some (an outcome recorded later, events of a finished run)
    cannot hold for a record written whole; they are defined again afterwards, whatever
    happens, from the definitions the database printed. The vector index is then rebuilt as
    after a bulk load. Import into a new store: if an import fails half-way, discard that
    store."""
    root = Path(path)
    manifest = await anyio.to_thread.run_sync(read_manifest, root)
    ours = await _schema(store)
    if manifest["schema"] != ours:
        theirs = ", ".join(f"{s['version']:03d}_{s['name']}" for s in manifest["schema"])
        mine = ", ".join(f"{s['version']:03d}_{s['name']}" for s in ours)
        raise SchemaError(
            f"the bundle was made at schema [{theirs}], this store is at [{mine}] (or their "
            f"files differ); import into a store at the same schema version"
        )
    _check_manifest(manifest, root)
    version = f"{ours[-1]['version']:03d}" if ours else "(none)"
    _check_tables(manifest, _schema_tables(store, ours), version)
    await anyio.to_thread.run_sync(_check_files, root, manifest)
    existing = {t for t, _ in await _tables(store, _schema_tables(store, ours))}
    for table in manifest["tables"]:
        if table in existing and await store.query(
            f"SELECT id FROM {validate_identifier(table)} LIMIT 1;", dict
        ):
            raise StoreStateError(f"the store is not empty (table {table} has records)")
    events = await _events(store)
    try:
        if events:
            await store.execute("".join(f"REMOVE EVENT {e} ON {t};" for t, e, _ in events))
        try:
            for table, meta in sorted(
                manifest["tables"].items(), key=lambda kv: (kv[1]["relation"], kv[0])
            ):
                await _load(store, root / meta["file"], table, meta["relation"], progress)
        except BaseException:
            # The store was empty: leave it so (the guards are still suspended).
            with anyio.CancelScope(shield=True):
                await _empty(store, manifest, existing)
            raise
    finally:
        # The very definitions that were removed, as the database printed them: the schema
        # is as before (the drift check agrees), and no index is rebuilt for nothing. One
        # query: each definition runs even if another fails.
        if events:
            await store.execute(";\n".join(ddl for _, _, ddl in events) + ";")
    await _rebuild_recall_index(store)
    return manifest


async def _empty(store: Store, manifest: Manifest, existing: set[str]) -> None:
    for table in manifest["tables"]:
        name = validate_identifier(table, what="table")
        if table in existing:
            await store.execute(f"DELETE {name};")
        else:
            await store.execute(f"REMOVE TABLE IF EXISTS {name};")


async def _rebuild_recall_index(store: Store) -> None:
    """Build the recall index again from the imported memories (cheaper than replaying the
    import's every change from the feed)."""
    from . import memory

    some = await store.query("SELECT VALUE id FROM memory LIMIT 1;", RecordId, idempotent=True)
    if some or await memory.get_space(store) is not None:
        await memory.rebuild_index(store)


async def _events(store: Store) -> list[tuple[str, str, str]]:
    """``(table, event, DDL)`` of every event of the exported tables."""
    info = await store.query_required_single("INFO FOR DB;", dict, idempotent=True)
    found: list[tuple[str, str, str]] = []
    for table in sorted(info.get("tables", {})):
        if table in _SKIP:
            continue
        name = validate_identifier(table, what="table")
        table_info = await store.query_required_single(f"INFO FOR TABLE {name};", dict)
        for event, ddl in sorted(table_info.get("events", {}).items()):
            found.append((name, validate_identifier(event, what="event"), str(ddl)))
    return found


async def _load(
    store: Store, file: Path, table: str, relation: bool, progress: Progress | None
) -> None:
    name = validate_identifier(table, what="table")
    text = f"INSERT {'RELATION ' if relation else ''}INTO {name} $rows RETURN NONE;"
    with file.open("rb") as f, ThreadPoolExecutor(1, "surreal-store-bundle") as reader:
        lines = enumerate(f, 1)

        def read() -> list[Any]:
            """The next page of records, parsed and checked."""
            batch: list[Any] = []
            for number, line in itertools.islice(lines, _PAGE):
                try:
                    row = decode_value(json.loads(line))
                except (ValueError, TypeError, KeyError, IndexError) as exc:
                    raise BundleError(f"{file.name}, line {number}: not a record ({exc})") from None
                rid = row.get("id") if isinstance(row, dict) else None
                if not isinstance(rid, RecordId) or rid.table != table:
                    raise BundleError(f"{file.name}, line {number}: not a record of table {table}")
                batch.append(row)
            return batch

        # The next page is read and parsed in a thread while the engine writes this one.
        batch = await asyncio.wrap_future(reader.submit(read))
        while batch:
            following = asyncio.wrap_future(reader.submit(read))
            try:
                await store.execute(text, rows=batch)
            except BaseException:
                following.cancel()
                raise
            if progress is not None:
                maybe = progress(table, len(batch))
                if maybe is not None:
                    await maybe
            batch = await following
