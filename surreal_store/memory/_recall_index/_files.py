"""The recall index's files beside an embedded store: where they live, how a saved index is
published whole, and how a load knows that what it reads is whole and belongs to its database.

Layout, one folder per database (``<store>.memindex/<name>``, :func:`database_folder`)::

    gen-<epoch>/    a published generation: its files and, written last, manifest.json
    tmp-<random>/   a generation being written; never read, removed by the next owner's open
    work-<random>/  the text index of the process that has the store open (a working copy)

A generation is written into ``tmp-*`` and published by one rename to ``gen-<epoch>``, so a
kill at any moment leaves the generations that were there before, plus litter that nothing
reads. Its manifest names the database it reflects (the ``database`` and ``epoch`` of the
database's ``memory_index:identity`` record, schema 020), the versionstamp, the format, and
every file with its size and digest (xxh3-128), and carries a digest of itself. A load uses
the generation that the database's record names and only once every check passes
(:func:`read_generation`); anything else is :class:`Unusable`, and the index is built again
from the table.

Names are digests of the namespace and database (with a readable prefix): tenants that differ
only in case or Unicode normalisation never share a folder, on any file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import xxhash

__all__ = [
    "FAR_FORMAT",
    "FORMAT",
    "Identity",
    "Unusable",
    "database_folder",
    "digest_file",
    "legacy_folder",
    "new_token",
    "read_generation",
    "remove_legacy",
    "scratch_folder",
    "sweep",
    "working_copy",
    "write_generation",
]

FORMAT: Final = 7
"""The layout of a generation's files (a generation of another format is never read)."""
FAR_FORMAT: Final = 8
"""Format 7 with the times its columns cannot hold listed in the manifest (``far``): a
reader of format 7 alone would take their stand-ins for them."""
MANIFEST: Final = "manifest.json"
# What a generation's manifest may name: a file of the generation or of its text folder.
_FILE_NAME: Final = re.compile(r"^(text/)?[A-Za-z0-9_.-]{1,128}$")
_TOKEN: Final = re.compile(r"^[0-9a-f]{32}$")
# A text index's lock files: never part of a generation.
_TEXT_LOCKS: Final = {".tantivy-writer.lock", ".tantivy-meta.lock"}


class Unusable(Exception):
    """A saved generation that must not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The database's record of its saved recall index (``memory_index:identity``): who it is
    (``database``, made once) and which generation its history has reached (``epoch``, moved
    by every save)."""

    database: str
    epoch: str

    @classmethod
    def parse(cls, row: Any) -> Identity | None:
        """The identity in a row read from the database, or ``None`` if it is not one."""
        if not isinstance(row, dict):
            return None
        database, epoch = row.get("database"), row.get("epoch")
        if not isinstance(database, str) or not isinstance(epoch, str):
            return None
        if not (_TOKEN.match(database) and _TOKEN.match(epoch)):
            return None
        return cls(database, epoch)


def new_token() -> str:
    """A random identity or epoch: 32 hex digits."""
    return secrets.token_hex(16)


def _readable(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9_-]+", "_", folded).strip("_")[:32] or "_"


def database_folder(store: Path, namespace: str, database: str) -> Path:
    """The folder of one database's recall index beside the embedded store at ``store``."""
    digest = hashlib.sha256(f"{namespace}\0{database}".encode()).hexdigest()[:20]
    name = f"{_readable(namespace)}.{_readable(database)}-{digest}"
    return _root(store) / name


def legacy_folder(store: Path, namespace: str, database: str) -> Path:
    """Where an index of format 5 or older was saved (``<ns>/<db>``, raw names)."""
    return _root(store) / namespace / database


def _root(store: Path) -> Path:
    base = store.expanduser().resolve()
    return base.parent / f"{base.name}.memindex"


def remove_legacy(folder: Path) -> None:
    """Remove an index saved in the layout of format 5 or older, if ``folder`` holds one (and
    its namespace folder, once empty)."""
    if not any((folder / p / "meta.json").is_file() for p in ("state", "state.old", "text")):
        return
    for part in ("state", "state.old", "state.tmp", "text"):
        shutil.rmtree(folder / part, ignore_errors=True)
    for empty in (folder, folder.parent):
        with contextlib.suppress(OSError):
            empty.rmdir()


def digest_file(path: Path) -> str:
    """The xxh3-128 digest of a file's bytes (mapped, not read into memory)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return xxhash.xxh3_128_hexdigest(b"")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return xxhash.xxh3_128_hexdigest(view)


def _manifest_digest(body: dict[str, Any]) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(body, sort_keys=True).encode())


def _files(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            if rel != MANIFEST and Path(rel).name not in _TEXT_LOCKS:
                yield rel, path


def write_generation(
    folder: Path, identity: Identity, meta: dict[str, Any], write: Callable[[Path], None]
) -> Path:
    """Write a generation (``write(into)`` writes its files), then its manifest, and publish
    it as ``gen-<identity.epoch>`` with one rename; return where it is."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"tmp-{new_token()}"
    tmp.mkdir()
    try:
        write(tmp)
        files = {rel: [path.stat().st_size, digest_file(path)] for rel, path in _files(tmp)}
        body = {
            **meta,
            "format": FAR_FORMAT if meta.get("far") else FORMAT,
            "database": identity.database,
            "epoch": identity.epoch,
            "files": files,
        }
        manifest = {"body": body, "digest": _manifest_digest(body)}
        (tmp / MANIFEST).write_text(json.dumps(manifest))
        final = folder / f"gen-{identity.epoch}"
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_generation(folder: Path, identity: Identity) -> tuple[Path, dict[str, Any]]:
    """The generation the database's ``identity`` names, and its manifest's body, once its
    manifest and every file it lists check out; :class:`Unusable` otherwise."""
    gen = folder / f"gen-{identity.epoch}"
    try:
        manifest = json.loads((gen / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise Unusable(f"no saved generation {identity.epoch}") from None
    except (OSError, ValueError) as exc:
        raise Unusable(f"its manifest is unreadable ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("body"), dict):
        raise Unusable("its manifest is not one")
    body: dict[str, Any] = manifest["body"]
    if manifest.get("digest") != _manifest_digest(body):
        raise Unusable("its manifest is damaged (its digest differs)")
    if body.get("format") not in (FORMAT, FAR_FORMAT):
        raise Unusable(f"it has format {body.get('format')!r}, not {FORMAT} or {FAR_FORMAT}")
    if (body.get("format") == FAR_FORMAT) != bool(body.get("far")):
        raise Unusable(f"its format {body.get('format')!r} and its list of far times disagree")
    if body.get("database") != identity.database:
        raise Unusable("it belongs to another database")
    if body.get("epoch") != identity.epoch:
        raise Unusable("it is another generation than its name says")
    files = body.get("files")
    if not isinstance(files, dict):
        raise Unusable("its manifest lists no files")
    for rel, entry in files.items():
        if not isinstance(rel, str) or not _FILE_NAME.match(rel) or ".." in rel.split("/"):
            raise Unusable(f"its manifest names {rel!r}")
        if not (isinstance(entry, list) and len(entry) == 2):
            raise Unusable(f"its manifest's entry for {rel} is not (size, digest)")
        path = gen / rel
        try:
            if path.stat().st_size != entry[0]:
                raise Unusable(f"{rel} has {path.stat().st_size} bytes, not {entry[0]}")
            if digest_file(path) != entry[1]:
                raise Unusable(f"{rel} is damaged (its digest differs)")
        except OSError as exc:
            raise Unusable(f"{rel} is unreadable ({exc})") from None
    return gen, body


def sweep(folder: Path, keep: set[Path]) -> None:
    """Remove every generation, unfinished generation and working copy in ``folder`` but
    ``keep``: they are never read again."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def scratch_folder() -> Path:
    """A private folder outside the store, for a session that may not write beside it; the
    folders of processes that ended without removing theirs (killed) are removed first."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{_SCRATCH}*"):
        pid = old.name.removeprefix(_SCRATCH).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{_SCRATCH}{os.getpid()}-"))


_SCRATCH: Final = "surreal-store-index-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True


def working_copy(source: Path | None, into: Path) -> None:
    """Make ``into`` a copy of the text index in ``source`` (empty if ``None``): a published
    generation's, for tantivy to change, or a working copy's, to publish. Copied, never
    linked: tantivy maps its files, and a generation damaged while a store is open (a restore
    that overwrites files in place) must not reach the running index, nor the reverse."""
    into.mkdir(parents=True)
    if source is None:
        return
    for path in source.iterdir():
        if path.is_file() and path.name not in _TEXT_LOCKS:
            shutil.copyfile(path, into / path.name)
