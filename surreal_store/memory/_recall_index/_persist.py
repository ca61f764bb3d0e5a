"""Saving the recall index as a generation of its files, and loading one (the layout, the
manifest and its checks are :mod:`._files`'s).

Columns are flat arrays rather than JSON, so that a warm open reads them in milliseconds.
A load reads every file rather than mapping it, so a file damaged or truncated while the store
is open cannot reach recall (a truncated mapping faults the process). The exact vectors are
the exception: most recalls never use them, so they are read when first used, and their
digest is checked again on the bytes read (:class:`~._index.SavedVectors`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from ._failures import is_library_failure
from ._files import Identity, Unusable, read_generation, working_copy, write_generation
from ._index import COLUMNS, DerivedIndex
from ._rows import Rows
from ._times import TIMES
from ._vectors import SavedVectors

__all__ = ["load", "save"]


def save(index: DerivedIndex, identity: Identity) -> Path:
    """Write ``index`` as a new generation of its database's folder, named by ``identity``
    (whose epoch is new), and publish it; return where it is."""
    assert index.path is not None
    assert index.work is not None
    index.commit_text()
    n = index.size
    meta = {
        "versionstamp": index.versionstamp,
        "read_from": index.read_from,
        "dim": index.dim,
        "slots": n,
        "codes": list(index.codes),
    }
    if index.far:  # the exact times the columns cannot hold (a JSON int holds any)
        meta["far"] = [[slot, col, n] for slot, far in index.far.items() for col, n in far.items()]
    return write_generation(index.path, identity, meta, lambda into: _write_files(index, into))


def _write_files(index: DerivedIndex, into: Path) -> None:
    n = index.size
    columns: dict[str, Any] = {k: v[:n] for k, v in index.cols.items()}
    # Memory keys are 64 hex digits (the schema checks them): a line each, "" for a gap.
    (into / "ids.txt").write_text("\n".join(k or "" for k in index.ids))
    pairs = [(code, slot) for code, slots in index.tags.items() for slot in slots]
    columns["tags"] = np.array(pairs, dtype=np.int64).reshape(-1, 2)  # (tag code, slot)
    blob, columns["row_ends"] = index.rows.packed()
    (into / "rows.bin").write_bytes(blob)
    columns["hash_slots"] = np.fromiter(index.vector_hash, dtype=np.int64)
    columns["hash_values"] = np.fromiter(index.vector_hash.values(), dtype=np.int64)
    np.savez(into / "columns.npz", **columns)
    if index.ann is not None:
        index.ann.save_index(str(into / "vectors.hnsw"))
        np.save(into / "vectors.npy", index.vecs[:n])
    assert index.work is not None
    working_copy(index.work, into / "text")


def load(path: Path, identity: Identity, *, owner: bool) -> DerivedIndex:
    """The generation saved in ``path`` that ``identity`` names, once its manifest and
    every file check out; :class:`Unusable` if it is absent or any check fails."""
    gen, meta = read_generation(path, identity)
    index = DerivedIndex(path, owner=owner, text=False)
    try:
        _read(index, gen, meta)
    except Unusable:
        index.drop_text()
        raise
    except BaseException as exc:
        index.drop_text()
        if not is_library_failure(exc):
            raise
        raise Unusable(f"{type(exc).__name__}: {exc}") from None
    index.identity = identity
    return index


def _read(index: DerivedIndex, gen: Path, meta: dict[str, Any]) -> None:
    index.versionstamp = int(meta["versionstamp"])
    index.read_from = int(meta["read_from"])
    index.origin = "loaded"
    n = int(meta["slots"])
    with np.load(gen / "columns.npz", allow_pickle=False) as saved:
        text = (gen / "ids.txt").read_text()
        keys = text.split("\n") if n else []
        if len(keys) != n:
            raise Unusable("ids and slots differ in number")
        index.ids = [k or None for k in keys]
        # Room for the saved slots exactly (at least 1,024), so that the saved vectors
        # are used as read rather than copied again; the first new memory grows it.
        room = max(n, 1024)
        index.cols = {}
        for name, (fill, dtype) in COLUMNS.items():
            col = np.full(room, fill, dtype=dtype)
            col[:n] = saved[name]
            index.cols[name] = col
        for code, slot in saved["tags"].tolist():
            index.tags.setdefault(code, set()).add(slot)
        index.rows = Rows((gen / "rows.bin").read_bytes(), saved["row_ends"])
        if len(index.rows) != n:
            raise Unusable("rows and ids differ in number")
        index.vector_hash = dict(
            zip(saved["hash_slots"].tolist(), saved["hash_values"].tolist(), strict=True)
        )
    index.slot_of = dict(zip(keys, range(n), strict=True))
    index.slot_of.pop("", None)
    index.codes = {c: i for i, c in enumerate(meta["codes"])}
    for slot, column, exact in meta.get("far", ()):
        if column not in TIMES or not 0 <= slot < n or type(exact) is not int:
            raise Unusable("its manifest lists a time that is not one")
        index.far.setdefault(slot, {})[column] = exact
    index.dim = int(meta["dim"])
    if index.dim:
        index.ann = hnswlib.Index(space="cosine", dim=index.dim)
        index.ann.load_index(str(gen / "vectors.hnsw"), max_elements=room)
        index.ann.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        # Read when first used, and checked again then (see the module's docstring).
        listed = meta["files"].get("vectors.npy")
        if listed is None:
            raise Unusable("its manifest lists no vectors")
        size, digest = listed
        index.saved_vecs = SavedVectors(
            gen / "vectors.npy", int(size), str(digest), n, index.dim, room
        )
    index.open_text(gen / "text")
