"""Versioned, idempotent schema loading from ``schema/NNN_name.surql``.

Guarantees (each covered by ``tests/test_migrate.py``):

- Files apply in version order; each file and its ``schema_migration`` record commit in one
  transaction, so a failing file leaves neither behind. The pending files go to the engine in
  one round trip, and a file runs only if the one before it committed.
- With nothing pending, a check costs one round trip and writes nothing.
- Tripwire: a database that records versions this code does not know is refused with
  :class:`SchemaTooNewError` before anything is written.
- An applied file whose normalised text changed is refused (:class:`ChecksumMismatchError`)
  until it is explicitly reblessed.
- Migrators serialise on a lock record in the database (not only in this process). A holder
  renews it while it works; a lock whose holder stopped renewing expires and is taken over.
- Drift: live definitions are compared with those the applied files produce in a scratch
  ``mem://`` database.
- The access layer (:mod:`._permissions`: every table's and field's permissions, generated
  from the access table for the tables and fields the database has) is applied after the
  files, in one transaction, and again whenever the files or the access table change; its
  digest (``$access_layer``) says which one the database holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from . import _errors as e
from . import _permissions, _retry
from ._executor import Executor, MigrationTarget
from ._surql import checksum, split_statements, validate_identifier
from ._types import Model, RecordId
from ._version import __version__

__all__ = [
    "AppliedMigration",
    "DriftItem",
    "DriftReport",
    "MigrationResult",
    "Migrator",
    "SchemaFile",
    "SchemaStatus",
    "default_schema_dir",
    "load_schema_files",
]

T = TypeVar("T")
_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9][a-z0-9_]*)\.surql$")
_LOCK_ID = RecordId("schema_lock", "migrate")

# The migrator's own lock table. It must exist before the first lock is taken, i.e. before any
# numbered file has run, so the migrator defines it (IF NOT EXISTS: a no-op once present); the
# drift check runs the same text in its scratch database.
_LOCK_DDL = """
DEFINE TABLE IF NOT EXISTS schema_lock SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS owner ON schema_lock TYPE string;
DEFINE FIELD IF NOT EXISTS acquired_at ON schema_lock TYPE datetime;
DEFINE FIELD IF NOT EXISTS expires_at ON schema_lock TYPE datetime;
"""

_SELECT_APPLIED = """
SELECT version, name, checksum, applied_at, execution_ms, engine_version, tool_version,
       reblessed_at
FROM schema_migration ORDER BY version;
"""
# The applied files and the digest of the access layer the database holds, in one round trip.
_SELECT_STATE = _SELECT_APPLIED + f"RETURN ${_permissions.LAYER_PARAM};\n"

# Deliberately not one transaction: the engine refuses a CREATE after a DELETE of the same id
# in one transaction ("already exists"). Each statement is safe alone: the DELETE only removes an
# expired lock (a live holder's renewal and this DELETE exclude each other), and CREATE fails if
# anyone holds the lock.
_ACQUIRE = (
    _LOCK_DDL
    + """
DELETE $lock WHERE expires_at < time::now();
CREATE $lock SET owner = $owner, acquired_at = time::now(), expires_at = time::now() + $ttl;
"""
)

_HOLDER = "SELECT owner, expires_at FROM ONLY $lock;"
_RENEW = "UPDATE $lock SET expires_at = time::now() + $ttl WHERE owner = $owner RETURN VALUE owner;"
_RELEASE = "DELETE $lock WHERE owner = $owner;"

# Appended, inside the same transaction, to each file's own statements.
_RECORD = """
CREATE $_sm_id CONTENT {
    version: $_sm_version, name: $_sm_name, checksum: $_sm_checksum,
    applied_at: time::now(), execution_ms: duration::nanos(time::now() - $_sm_t0) / 1000000.0,
    engine_version: $_sm_engine, tool_version: $_sm_tool
};
"""
# First in the transaction of each file after the first, when files apply together: a file
# whose predecessor did not commit fails, and every file after it.
_AFTER = """
IF !record::exists($_sm_before) { THROW 'invalid: an earlier schema file failed' };
"""
_REBLESS = """
UPDATE $_sm_id SET previous_checksums += checksum, checksum = $_sm_checksum,
    reblessed_at = time::now(), tool_version = $_sm_tool;
"""


class AppliedMigration(Model):
    """A ``schema_migration`` record: one applied file."""

    version: int
    name: str
    checksum: str
    applied_at: dt.datetime
    execution_ms: float
    engine_version: str
    tool_version: str
    reblessed_at: dt.datetime | None = None


_LAYER_MARK = "-- layer: reapplied after a rebless"


@dataclass(frozen=True)
class SchemaFile:
    """One numbered schema file."""

    version: int
    name: str
    path: Path
    text: str

    @cached_property
    def checksum(self) -> str:
        """SHA-256 of the normalised text (line endings and trailing whitespace ignored)."""
        return checksum(self.text)

    @property
    def statements(self) -> list[str]:
        return split_statements(self.text)

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def layered(self) -> bool:
        """Whether the file redefines earlier files' tables (to add permissions, say): then
        re-applying an earlier file (rebless) must re-apply this one after it, or its
        additions would be lost. Marked by a line ``-- layer: reapplied after a rebless``."""
        return _LAYER_MARK in self.text


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands against this code's schema files."""

    code_version: int
    db_version: int
    applied: list[AppliedMigration]
    pending: list[SchemaFile]
    mismatched: list[tuple[SchemaFile, AppliedMigration]]
    """Applied files whose text changed since."""
    unknown: list[AppliedMigration]
    """Applied versions that this code has no file for (a newer code wrote them)."""
    access_layer_current: bool = True
    """Whether the database holds the access layer of its files and this code's access table
    (:mod:`._permissions`); ``migrate`` applies it."""

    @property
    def ok(self) -> bool:
        return not (
            self.pending or self.mismatched or self.unknown or not self.access_layer_current
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "code_version": self.code_version,
            "db_version": self.db_version,
            "applied": [m.model_dump(mode="json") for m in self.applied],
            "pending": [f.label for f in self.pending],
            "mismatched": [f.label for f, _ in self.mismatched],
            "unknown": [m.version for m in self.unknown],
            "access_layer": "current" if self.access_layer_current else "stale",
        }


@dataclass(frozen=True)
class DriftItem:
    """One definition that differs: ``added`` (live only), ``missing`` (files only), or
    ``changed`` (both, different text)."""

    change: Literal["added", "missing", "changed"]
    kind: str
    name: str
    live: str | None
    expected: str | None

    def __str__(self) -> str:
        sign = {"added": "+", "missing": "-", "changed": "~"}[self.change]
        return f"{sign} {self.kind} {self.name}"


@dataclass(frozen=True)
class DriftReport:
    items: list[DriftItem] = field(default_factory=list)
    note: str | None = None
    """Set when the comparison may be unreliable (e.g. the live engine is another version)."""

    @property
    def ok(self) -> bool:
        return not self.items

    def of(self, change: str) -> list[DriftItem]:
        return [i for i in self.items if i.change == change]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "note": self.note,
            "items": [
                {
                    "change": i.change,
                    "kind": i.kind,
                    "name": i.name,
                    "live": i.live,
                    "expected": i.expected,
                }
                for i in self.items
            ],
        }


@dataclass(frozen=True)
class MigrationResult:
    applied: list[SchemaFile]
    """Files applied by this call (empty for a dry run)."""
    plan: list[SchemaFile]
    """Files that were pending when the call looked."""
    dry_run: bool = False
    access_layer: bool = False
    """Whether this call applied the access layer (after the files, or alone when only the
    access table changed)."""


def default_schema_dir() -> Path:
    """The schema files shipped with this package (inside the wheel, or the repository's)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schema", here.parent / "schema"):
        if candidate.is_dir():
            return candidate
    raise e.SchemaFileError(f"no schema directory found next to {here}")


def load_schema_files(directory: Path | None = None) -> list[SchemaFile]:
    """Read and check the numbered ``.surql`` files of ``directory``, in version order."""
    directory = directory or default_schema_dir()
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix == ".surql")
    except OSError as exc:
        raise e.SchemaFileError(f"cannot read schema directory {directory}: {exc}") from None
    files: dict[int, SchemaFile] = {}
    for path in paths:
        match = _FILE_NAME.match(path.name)
        if not match:
            raise e.SchemaFileError(f"{path.name}: schema files are named NNN_name.surql")
        version = int(match.group(1))
        if version < 1:
            raise e.SchemaFileError(f"{path.name}: versions start at 001")
        if version in files:
            raise e.SchemaFileError(
                f"{path.name}: version {version} is also {files[version].path.name}"
            )
        files[version] = _read(path, version, match.group(2))
    return [files[v] for v in sorted(files)]


# Re-opening a store should not re-read and re-hash every file: a file is read again only when
# its size or modification time changed (an edit after the fact still shows up as a mismatch).
_FILE_CACHE: dict[Path, tuple[tuple[int, int], SchemaFile]] = {}


def _read(path: Path, version: int, name: str) -> SchemaFile:
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = _FILE_CACHE.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise e.SchemaFileError(f"cannot read {path}: {exc}") from None
    f = SchemaFile(version=version, name=name, path=path, text=text)
    _FILE_CACHE[path] = (key, f)
    return f


class Migrator:
    """Applies, checks and compares the schema files of one store."""

    def __init__(self, store: MigrationTarget, *, schema_dir: Path | None = None) -> None:
        self._store = store
        self._access = store.schema_access()
        self._dir = schema_dir
        self._files: list[SchemaFile] | None = None

    @property
    def files(self) -> list[SchemaFile]:
        if self._files is None:
            self._files = load_schema_files(self._dir)
        return self._files

    @property
    def code_version(self) -> int:
        return self.files[-1].version if self.files else 0

    def file(self, ref: str | int | Path) -> SchemaFile:
        """A schema file by version (``3``, ``"003"``), file name, or path."""
        for f in self.files:
            if (
                ref in (f.version, f.label, f.path)
                or str(ref)
                in (
                    f"{f.version:03d}",
                    str(f.version),
                    f.label,
                    str(f.path),
                )
                or (isinstance(ref, str | Path) and Path(ref).name == f.label)
            ):
                return f
        raise e.SchemaFileError(f"no schema file {ref!r} in {self.files[0].path.parent}")

    # -- reading -----------------------------------------------------------------------------

    async def applied(self) -> list[AppliedMigration]:
        """The database's ``schema_migration`` records (none for a fresh database)."""
        try:
            return await self._store.query(_SELECT_APPLIED, AppliedMigration)
        except e.NotFoundError:
            return []  # the table is defined by the first file: not there yet

    async def status(self) -> SchemaStatus:
        """Compare the database's records with the files. One round trip; writes nothing."""
        try:
            rows, layer_digest = await self._store.execute(_SELECT_STATE, idempotent=True)
        except e.NotFoundError:
            rows, layer_digest = [], None  # the table is defined by the first file
        applied = [AppliedMigration.model_validate(r) for r in rows or []]
        by_version = {f.version: f for f in self.files}
        done = {m.version for m in applied}
        mismatched = [
            (by_version[m.version], m)
            for m in applied
            if m.version in by_version and by_version[m.version].checksum != m.checksum
        ]
        return SchemaStatus(
            code_version=self.code_version,
            db_version=max(done, default=0),
            applied=applied,
            pending=[f for f in self.files if f.version not in done],
            mismatched=mismatched,
            unknown=[m for m in applied if m.version not in by_version],
            access_layer_current=layer_digest == _layer_digest(applied),
        )

    async def check(self) -> SchemaStatus:
        """Refuse a database this code must not touch; return its status otherwise."""
        status = await self.status()
        _refuse_unsafe(status)
        return status

    # -- writing -----------------------------------------------------------------------------

    async def migrate(self, *, dry_run: bool = False) -> MigrationResult:
        """Apply the pending files in order, holding the database lock while doing so."""
        async with self._access.lock:  # one migrator per store at a time
            status = await self.check()
            if (not status.pending and status.access_layer_current) or dry_run:
                return MigrationResult(applied=[], plan=status.pending, dry_run=dry_run)
            return await self._locked().run(self._apply_pending)

    async def _apply_pending(self) -> MigrationResult:
        status = await self.check()  # another migrator may have finished while we waited
        done = await self._apply_together(status.pending)
        for f in status.pending[done:]:
            await self._apply(f)
        layered = bool(status.pending) or not status.access_layer_current
        if layered:
            await apply_access_layer(self._store, await self.applied())
        return MigrationResult(applied=status.pending, plan=status.pending, access_layer=layered)

    async def rebless(self, ref: str | int | Path) -> SchemaFile | None:
        """Accept the current text of an applied file: re-apply it and record its new checksum,
        in one transaction. Returns ``None`` when the checksum already matched."""
        f = self.file(ref)

        async def work() -> SchemaFile | None:
            status = await self.status()
            if status.unknown:
                _refuse_unsafe(status)
            record = next((m for m in status.applied if m.version == f.version), None)
            if record is None:
                raise e.SchemaError(f"{f.label} is not applied yet; run migrate instead")
            if record.checksum == f.checksum:
                return None
            done = {m.version for m in status.applied}
            layers = "".join(
                "\n;" + g.text
                for g in self.files
                if g.version > f.version and g.version in done and g.layered
            )
            await self._store.execute(
                "BEGIN;\n" + f.text + layers + "\n;" + _REBLESS + "COMMIT;",
                _sm_id=RecordId("schema_migration", f.version),
                _sm_checksum=f.checksum,
                _sm_tool=__version__,
            )
            # The file redefined its tables: their permissions are the access layer's again.
            await apply_access_layer(self._store, await self.applied())
            return f

        async with self._access.lock:
            return await self._locked().run(work)

    async def _apply_together(self, files: list[SchemaFile]) -> int:
        """Apply the leading files that hold statements in one round trip, each file with its
        record in a transaction of its own; returns how many committed. A file runs only if
        the one before it committed. On a failure the caller applies the rest one at a time,
        which reports the failing file and statement as :meth:`_apply` does."""
        files = list(itertools.takewhile(lambda f: f.statements, files))
        if len(files) < 2:
            return 0
        params: dict[str, Any] = {"_sm_engine": self._store.engine_version, "_sm_tool": __version__}
        parts: list[str] = []
        for i, f in enumerate(files):
            guard = "" if i == 0 else _AFTER.replace("$_sm_before", f"$_sm_id_{i - 1}")
            record = _RECORD.replace("$_sm_id", f"$_sm_id_{i}")
            for key in ("version", "name", "checksum"):
                record = record.replace(f"$_sm_{key}", f"$_sm_{key}_{i}")
            parts.append("BEGIN;\nLET $_sm_t0 = time::now();\n" + guard + f.text + "\n;")
            parts.append(record + "COMMIT;\n")
            params |= {
                f"_sm_id_{i}": RecordId("schema_migration", f.version),
                f"_sm_version_{i}": f.version,
                f"_sm_name_{i}": f.name,
                f"_sm_checksum_{i}": f.checksum,
            }
        limit = self._store.settings.query_timeout_s
        try:
            await self._store.execute(
                "".join(parts),
                timeout_s=None if limit is None else limit * len(files),
                **params,
            )
        except (e.QueryError, e.ConflictError):
            applied = {m.version for m in await self.applied()}
            return sum(1 for f in files if f.version in applied)
        return len(files)

    async def _apply(self, f: SchemaFile) -> None:
        if not f.statements:
            raise e.SchemaFileError(f"{f.label} holds no statement")
        text = "BEGIN;\nLET $_sm_t0 = time::now();\n" + f.text + "\n;" + _RECORD + "COMMIT;"
        try:
            await self._store.execute(
                text,
                _sm_id=RecordId("schema_migration", f.version),
                _sm_version=f.version,
                _sm_name=f.name,
                _sm_checksum=f.checksum,
                _sm_engine=self._store.engine_version,
                _sm_tool=__version__,
            )
        except e.QueryError as exc:
            # Statement numbers count from the file's first statement (two are prepended).
            number = exc.statement - 2 if exc.statement and exc.statement > 2 else None
            where = f" (statement {number})" if number else ""
            raise e.SchemaError(f"{f.label}{where}: {exc.message}") from exc

    # -- the database lock -------------------------------------------------------------------

    def _locked(self) -> _SchemaLock:
        s = self._store.settings
        return _SchemaLock(
            self._store, ttl_s=s.migration_lock_ttl_s, timeout_s=s.migration_lock_timeout_s
        )

    # -- drift -------------------------------------------------------------------------------

    async def drift(self) -> DriftReport:
        """Compare live definitions with those of the applied files, built in ``mem://``."""
        applied = {m.version for m in await self.applied()}
        expected_files = [f for f in self.files if f.version in applied]
        live = await definitions(self._store)
        async with self._access.scratch() as scratch:
            if expected_files:  # the lock table appears with the first migration
                await scratch.execute(_LOCK_DDL)
            for f in expected_files:
                await scratch.execute(f.text)
            if expected_files:
                await apply_access_layer(scratch, [(f.version, f.checksum) for f in expected_files])
            expected = await definitions(scratch)
            note = None
            if scratch.engine_version != self._store.engine_version:
                note = (
                    f"the live engine is {self._store.engine_version}, the scratch engine "
                    f"{scratch.engine_version}: canonical text may differ between versions"
                )
        return DriftReport(items=compare_definitions(live, expected), note=note)


class _SchemaLock:
    """The ``schema_lock:migrate`` record, renewed in the background while work runs."""

    def __init__(self, store: MigrationTarget, *, ttl_s: float, timeout_s: float) -> None:
        self._store = store
        self._access = store.schema_access()
        self._ttl = dt.timedelta(seconds=ttl_s)
        self._timeout_s = timeout_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lost = False

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Acquire the lock, run ``work`` while renewing it, release it (even on error)."""
        await self._acquire()
        outcome: list[T] = []
        failure: list[Exception] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._renew, tg.cancel_scope)
                # The body's error is kept out of the task group so callers see our error
                # types, not an ExceptionGroup.
                try:
                    outcome.append(await work())
                except Exception as exc:
                    failure.append(exc)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                # If releasing fails the lock expires on its own; the outcome matters more.
                with contextlib.suppress(e.StoreError):
                    await self._store.execute(_RELEASE, lock=_LOCK_ID, owner=self.owner)
        if failure:
            raise failure[0]
        if self._lost or not outcome:
            raise e.MigrationLockedError(
                "lost the schema lock while migrating (it was not renewed in time and another "
                "migrator took it); the files applied so far are committed, rerun migrate"
            )
        return outcome[0]

    async def _acquire(self) -> None:
        try:
            await _retry.again(
                functools.partial(
                    self._store.execute, _ACQUIRE, lock=_LOCK_ID, owner=self.owner, ttl=self._ttl
                ),
                on=(e.AlreadyExistsError, e.ConflictError),
                within_s=self._timeout_s,
                initial_s=0.02,
                max_s=0.5,
            )
        except (e.AlreadyExistsError, e.ConflictError):
            holder = await self._store.query_single(_HOLDER, dict, lock=_LOCK_ID)
            who = (
                f"{holder.get('owner')} (lock valid until {holder.get('expires_at')})"
                if holder
                else "another migrator"
            )
            raise e.MigrationLockedError(
                f"the schema is being migrated by {who}; gave up after {self._timeout_s}s"
            ) from None

    async def _renew(self, scope: anyio.CancelScope) -> None:
        interval = self._ttl.total_seconds() / 3
        while True:
            await anyio.sleep(interval)
            try:
                # Not queued behind the embedded write lock, which the migration itself holds
                # while a long statement (an index build) runs; the renewal touches only the
                # lock record, which no serialised write touches while we hold it.
                held = await self._access.renew(
                    _RENEW, str, lock=_LOCK_ID, owner=self.owner, ttl=self._ttl
                )
            except e.StoreError:
                continue  # try again next interval; the lock outlives two missed renewals
            if not held:
                self._lost = True
                scope.cancel()
                return


# -- the access layer ------------------------------------------------------------------------


def _layer_digest(applied: Iterable[AppliedMigration | tuple[int, str]]) -> str:
    return _permissions.digest(
        (m.version, m.checksum) if isinstance(m, AppliedMigration) else m for m in applied
    )


async def table_fields(store: Executor) -> dict[str, dict[str, str]]:
    """Every table of the database and its fields' definitions, as ``INFO`` prints them. Two
    round trips."""
    info = await store.query_required_single("INFO FOR DB;", dict, idempotent=True)
    tables = sorted(info.get("tables") or {})
    for t in tables:
        if not _is_identifier(t):
            raise e.SchemaError(
                f"table {t!r} has a name the access layer cannot write; rename or remove it"
            )
    if not tables:
        return {}
    text = "".join(f"INFO FOR TABLE {t};" for t in tables)
    results = await store.execute(text, idempotent=True)
    return {
        t: {
            str(f): str(ddl)
            for f, ddl in ((r.get("fields") or {}) if isinstance(r, dict) else {}).items()
        }
        for t, r in zip(tables, results, strict=True)
    }


async def apply_access_layer(
    store: Executor, applied: Iterable[AppliedMigration | tuple[int, str]]
) -> str:
    """Bring every table and field of ``store`` to the access table (:mod:`._permissions`), in
    one transaction, and record which layer it holds; ``applied``: its applied files. Returns
    the layer's digest."""
    layer_digest = _layer_digest(applied)
    statements = _permissions.layer(await table_fields(store))
    await store.execute(
        "BEGIN;\n"
        + "\n".join(statements)
        + f"\nDEFINE PARAM OVERWRITE ${_permissions.LAYER_PARAM} VALUE $_layer_digest;\nCOMMIT;",
        _layer_digest=layer_digest,
    )
    return layer_digest


# -- definitions -------------------------------------------------------------------------------


async def definitions(store: Executor) -> dict[tuple[str, str], str]:
    """Every definition of the database as ``{(kind, name): canonical DDL}``.

    Two round trips: ``INFO FOR DB``, then ``INFO FOR TABLE`` for every table at once.
    """
    info = await store.query_required_single("INFO FOR DB;", dict, idempotent=True)
    out: dict[tuple[str, str], str] = {}
    for category, entries in sorted(info.items()):
        # Users are accounts (surreal-store users), not schema: they differ between stores.
        if isinstance(entries, dict) and category != "users":
            for name, ddl in entries.items():
                out[(category.removesuffix("s"), name)] = str(ddl)
    tables = sorted(info.get("tables", {}))
    plain = [t for t in tables if _is_identifier(t)]
    if plain:
        text = "".join(f"INFO FOR TABLE {validate_identifier(t, what='table')};" for t in plain)
        results = await store.execute(text, idempotent=True)
        for table, table_info in zip(plain, results, strict=True):
            for category, entries in sorted(table_info.items()):
                if category == "lives" or not isinstance(entries, dict):
                    continue  # live queries are sessions, not schema
                for name, ddl in entries.items():
                    out[(category.removesuffix("s"), f"{table}.{name}")] = str(ddl)
    return out


def compare_definitions(
    live: dict[tuple[str, str], str], expected: dict[tuple[str, str], str]
) -> list[DriftItem]:
    items: list[DriftItem] = []
    for key in sorted(set(live) | set(expected)):
        kind, name = key
        a, b = live.get(key), expected.get(key)
        if a == b:
            continue
        change: Literal["added", "missing", "changed"] = (
            "added" if b is None else "missing" if a is None else "changed"
        )
        items.append(DriftItem(change=change, kind=kind, name=name, live=a, expected=b))
    return items


def _is_identifier(name: str) -> bool:
    try:
        validate_identifier(name)
    except e.ValidationError:
        return False
    return True


def _refuse_unsafe(status: SchemaStatus) -> None:
    if status.unknown:
        versions = ", ".join(f"{m.version:03d}_{m.name}" for m in status.unknown)
        raise e.SchemaTooNewError(
            f"the database records schema versions this code does not know ({versions}; "
            f"code is at {status.code_version:03d}); upgrade surreal-store. Nothing was written."
        )
    if status.mismatched:
        names = ", ".join(f.label for f, _ in status.mismatched)
        raise e.ChecksumMismatchError(
            f"applied schema file(s) changed since they were applied: {names}. Restore them, or "
            f"accept the new text with `surreal-store rebless FILE`."
        )
    if status.pending and status.applied:
        top = max(m.version for m in status.applied)
        behind = [f for f in status.pending if f.version < top]
        if behind:
            names = ", ".join(f.label for f in behind)
            raise e.SchemaFileError(
                f"{names} would apply out of order: version {top:03d} is already applied"
            )


def describe(files: Iterable[SchemaFile]) -> list[dict[str, Any]]:
    """A dry run's plan as plain data: each file with its statements."""
    return [
        {"version": f.version, "file": f.label, "checksum": f.checksum, "statements": f.statements}
        for f in files
    ]
