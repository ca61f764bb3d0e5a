"""The recall index's saved files are never taken for what they are not: a restored older copy
of the store, a new store at a deleted one's path, another store's files, damaged files, a
kill at any moment. Each time, recall equals what the memory table holds.

Real embedded engine throughout; the pure parts of the file layout are tested without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
import pytest

from surreal_store import NotFoundError, RecallIndexError, Store, access, memory
from surreal_store.memory import NewMemory
from surreal_store.memory._recall_index import _files as _index_files
from surreal_store.memory._recall_index._feed import DerivedIndex, derived_index
from surreal_store.memory._recall_index._files import Identity, Unusable

pytestmark = pytest.mark.anyio

DIM = 16


def vec(i: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(i).normal(size=DIM)]


def content(i: int, tag: str = "m") -> str:
    # One word that no other memory has, for full-text recall of exactly this one.
    return f"{tag}{i} note about topic{i % 7}"


async def write(s: Store, numbers: range, tag: str = "m") -> list[str]:
    await memory.declare_space(s, model="m", dimension=DIM)
    items = [NewMemory(content=content(i, tag), embedding=vec(i)) for i in numbers]
    return (await memory.remember_many(s, items)).ids


async def table(s: Store) -> dict[str, tuple[str, bool]]:
    """The memory table: id -> (content, live)."""
    rows = await s.query(
        "SELECT record::id(id) AS id, content, invalidated_at = NONE AS live FROM memory;", dict
    )
    return {r["id"]: (r["content"], r["live"]) for r in rows}


async def assert_recall_equals_table(
    s: Store, *, sample: int | None = None, tag_of: Callable[[str], str] | None = None
) -> None:
    """Recall equals the table: the index holds its count, every memory (or a ``sample``) is
    found by full text and by vector as the table has it (live or not), and broad recalls
    return nothing the table lacks, with the table's content."""
    held = await table(s)
    status = await memory.index_status(s)
    assert status.memories == len(held)
    by_content = {c: i for i, (c, _) in held.items()}
    chosen = sorted(held)
    if sample is not None:
        rng = np.random.default_rng(len(held))
        chosen = [chosen[i] for i in rng.choice(len(chosen), min(sample, len(chosen)), False)]
    for memory_id in chosen:
        text, live = held[memory_id]
        word = text.split()[0]
        number = int(word.lstrip("abcdefghijklmnopqrstuvwxyz"))
        for hits in (
            await memory.recall(s, text=word, k=1, mode="fulltext", include_invalidated=True),
            await memory.recall(s, vector=vec(number), k=1, include_invalidated=True),
        ):
            assert [(h.memory.id, h.memory.content) for h in hits] == [(memory_id, text)]
        # Without include_invalidated: first if live, absent if not (a query whose terms no
        # live memory has in full falls back to any of them, so others may come).
        found = [h.memory.id for h in await memory.recall(s, text=word, k=3, mode="fulltext")]
        assert (found[:1] == [memory_id]) if live else (memory_id not in found)
    for hits in (
        await memory.recall(s, text="note", k=1000, mode="fulltext", include_invalidated=True),
        await memory.recall(s, vector=vec(0), k=1000, include_invalidated=True),
    ):
        for h in hits:
            assert h.memory.id in held
            assert h.memory.content == held[h.memory.id][0]
            assert by_content[h.memory.content] == h.memory.id


def generation(folder: Path) -> Path:
    (gen,) = folder.glob("gen-*")
    return gen


def store_dir(url: str) -> Path:
    return Path(url.removeprefix("surrealkv://"))


# -- the layout, without an engine --------------------------------------------------------------


def test_folders_of_databases_differing_in_case_or_normalisation_never_collide(
    tmp_path: Path,
) -> None:
    names = [
        ("ns", "acme"),
        ("ns", "ACME"),
        ("ns", "Acme"),
        ("ns", unicodedata.normalize("NFC", "café")),
        ("ns", unicodedata.normalize("NFD", "café")),
        ("NS", "acme"),
        ("ns", "a/b"),
        ("ns", "a_b"),
        ("n", "s.acme"),
    ]
    folders = [_index_files.database_folder(tmp_path / "store", n, d) for n, d in names]
    folded = {unicodedata.normalize("NFKC", f.name).casefold() for f in folders}
    assert len(folded) == len(names)
    for f in folders:
        assert f.parent == tmp_path / "store.memindex"
        assert f.name.isascii() and "/" not in f.name


def _publish(folder: Path, identity: Identity, files: dict[str, bytes]) -> Path:
    def put(into: Path) -> None:
        for name, data in files.items():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            (into / name).write_bytes(data)

    return _index_files.write_generation(folder, identity, {"versionstamp": 1}, put)


def test_a_generation_is_read_only_whole_and_only_by_its_database(tmp_path: Path) -> None:
    ours = Identity(_index_files.new_token(), _index_files.new_token())
    gen = _publish(tmp_path, ours, {"a.bin": b"x" * 1000, "text/meta.json": b"{}"})
    assert gen.name == f"gen-{ours.epoch}"
    assert not list(tmp_path.glob("tmp-*"))
    found, body = _index_files.read_generation(tmp_path, ours)
    assert (
        found == gen
        and body["versionstamp"] == 1
        and set(body["files"])
        == {
            "a.bin",
            "text/meta.json",
        }
    )
    other_database = Identity(_index_files.new_token(), ours.epoch)
    with pytest.raises(Unusable, match="another database"):
        _index_files.read_generation(tmp_path, other_database)
    with pytest.raises(Unusable, match="no saved generation"):
        _index_files.read_generation(tmp_path, Identity(ours.database, _index_files.new_token()))
    data = bytearray((gen / "a.bin").read_bytes())
    data[500] ^= 1
    (gen / "a.bin").write_bytes(bytes(data))
    with pytest.raises(Unusable, match=r"a\.bin is damaged"):
        _index_files.read_generation(tmp_path, ours)
    (gen / "a.bin").unlink()
    with pytest.raises(Unusable, match=r"a\.bin is unreadable"):
        _index_files.read_generation(tmp_path, ours)


def test_a_manifest_edited_or_naming_files_outside_its_generation_is_refused(
    tmp_path: Path,
) -> None:
    ours = Identity(_index_files.new_token(), _index_files.new_token())
    gen = _publish(tmp_path, ours, {"a.bin": b"x"})
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["body"]["versionstamp"] = 2  # valid JSON, another meaning
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Unusable, match="manifest is damaged"):
        _index_files.read_generation(tmp_path, ours)
    manifest["body"]["files"] = {"../escape": [1, "0"]}
    manifest["digest"] = _index_files._manifest_digest(manifest["body"])
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Unusable, match="names"):
        _index_files.read_generation(tmp_path, ours)
    (gen / "manifest.json").write_text("{not json")
    with pytest.raises(Unusable, match="unreadable"):
        _index_files.read_generation(tmp_path, ours)


def test_a_write_that_fails_publishes_nothing(tmp_path: Path) -> None:
    ours = Identity(_index_files.new_token(), _index_files.new_token())

    def half(into: Path) -> None:
        (into / "a.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _index_files.write_generation(tmp_path, ours, {}, half)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_sessions_private_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as ended:
        ended.wait()
    left = Path(tempfile.gettempdir()) / f"surreal-store-index-{ended.pid}-x"
    left.mkdir()
    (left / "text").mkdir()
    mine = _index_files.scratch_folder()
    try:
        assert not left.exists()
        assert mine.name.startswith(f"surreal-store-index-{os.getpid()}-")
        assert _index_files.scratch_folder() != mine and mine.exists()  # a live one stays
    finally:
        shutil.rmtree(left, ignore_errors=True)
        for folder in Path(tempfile.gettempdir()).glob(f"surreal-store-index-{os.getpid()}-*"):
            shutil.rmtree(folder)


# -- a database and the files beside it --------------------------------------------------------


async def test_a_restored_older_copy_is_answered_by_its_own_table(
    kv_url: str, tmp_path: Path
) -> None:
    """The backup's store comes back while the newer saved index stays beside it: memories
    written after the backup are never returned, and memories invalidated after it are
    visible again, as the restored table has them."""
    path = store_dir(kv_url)
    async with Store(kv_url) as s:
        first = await write(s, range(280))
    backup = tmp_path / "backup"
    shutil.copytree(path, backup)
    async with Store(kv_url) as s:
        await write(s, range(280, 460))
        for memory_id in first[:40]:
            await memory.invalidate(s, memory=memory_id, reason="after the backup")
        assert (await memory.index_status(s)).memories == 460
    shutil.rmtree(path)
    shutil.copytree(backup, path)
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("built", 280)
        await assert_recall_equals_table(s)
        hits = await memory.recall(s, text="m300", k=5, mode="fulltext")
        assert content(300) not in [h.memory.content for h in hits]


async def test_a_restored_copy_written_to_before_its_first_recall(
    kv_url: str, tmp_path: Path
) -> None:
    """Writes to the restored store before the index is looked at (raw SurrealQL, another
    tool) move its feed past the newer index's versionstamp: the identity still tells."""
    path = store_dir(kv_url)
    async with Store(kv_url) as s:
        await write(s, range(100))
    backup = tmp_path / "backup"
    shutil.copytree(path, backup)
    async with Store(kv_url) as s:
        await write(s, range(100, 200))
    shutil.rmtree(path)
    shutil.copytree(backup, path)
    async with Store(kv_url) as s:
        await write(s, range(1000, 1010), tag="late")
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).memories == 110
        await assert_recall_equals_table(s)


async def test_an_index_put_back_from_an_earlier_save_is_not_used(
    kv_url: str, tmp_path: Path
) -> None:
    """A copy of the index folder from an earlier save, put back after the store went on:
    the database names a later generation, so the copy is not used."""
    path = store_dir(kv_url)
    index_dir = path.parent / f"{path.name}.memindex"
    async with Store(kv_url) as s:
        await write(s, range(100))
    saved = tmp_path / "saved-index"
    shutil.copytree(index_dir, saved)
    async with Store(kv_url) as s:
        await write(s, range(100, 120), tag="later")
        await memory.invalidate(s, memory=memory.memory_id("default", content(3)), reason="x")
    shutil.rmtree(index_dir)
    shutil.copytree(saved, index_dir)
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("built", 120)
        await assert_recall_equals_table(s)


async def test_a_new_store_at_a_deleted_stores_path(kv_url: str) -> None:
    path = store_dir(kv_url)
    async with Store(kv_url) as s:
        await write(s, range(400), tag="old")
    shutil.rmtree(path)
    assert (path.parent / f"{path.name}.memindex").exists()
    async with Store(kv_url) as s:
        await write(s, range(100), tag="new")
        status = await memory.index_status(s)
        assert status.memories == 100
        await assert_recall_equals_table(s)
        hits = await memory.recall(s, text="old5", k=5, mode="fulltext")
        assert content(5, "old") not in [h.memory.content for h in hits]


async def test_a_removed_database_and_a_new_tenant_of_the_same_name(kv_url: str) -> None:
    async with Store(kv_url, tenant="acme") as s:
        await write(s, range(300), tag="old")
    async with Store(kv_url) as s:
        await s.execute("REMOVE DATABASE acme;")
    async with Store(kv_url, tenant="acme") as s:
        await write(s, range(50), tag="new")
        assert (await memory.index_status(s)).memories == 50
        await assert_recall_equals_table(s)


async def test_tenants_differing_only_in_case_keep_their_own_index(kv_url: str) -> None:
    async with Store(kv_url, tenant="acme") as lower:
        await write(lower, range(30), tag="lower")
    async with Store(kv_url, tenant="ACME") as upper:
        await write(upper, range(30, 50), tag="upper")
    async with Store(kv_url, tenant="acme") as lower, Store(kv_url, tenant="ACME") as upper:
        a, b = await memory.index_status(lower), await memory.index_status(upper)
        assert (a.origin, a.memories, b.origin, b.memories) == ("loaded", 30, "loaded", 20)
        assert a.path is not None and b.path is not None
        assert str(a.path).casefold() != str(b.path).casefold()
        await assert_recall_equals_table(lower)
        await assert_recall_equals_table(upper)


@pytest.mark.parametrize("what", ["folder", "generation", "text", "state"])
async def test_another_stores_index_placed_beside_a_store_is_not_used(
    tmp_path: Path, what: str
) -> None:
    a_url, b_url = f"surrealkv://{tmp_path / 'a'}", f"surrealkv://{tmp_path / 'b'}"
    async with Store(a_url) as a:
        await write(a, range(300), tag="a")
        a_folder = (await memory.index_status(a)).path
    async with Store(b_url) as b:
        await write(b, range(100), tag="b")
        b_folder = (await memory.index_status(b)).path
    assert a_folder is not None and b_folder is not None
    a_gen, b_gen = generation(a_folder), generation(b_folder)
    if what == "folder":  # the whole folder of the other store, under this one's name
        shutil.rmtree(b_folder)
        shutil.copytree(a_folder, b_folder)
    elif what == "generation":  # its generation, renamed as the one this database names
        shutil.rmtree(b_gen)
        shutil.copytree(a_gen, b_gen)
    elif what == "text":  # its text index alone
        shutil.rmtree(b_gen / "text")
        shutil.copytree(a_gen / "text", b_gen / "text")
    else:  # everything but the text index
        for f in a_gen.iterdir():
            if f.is_file() and f.name != "manifest.json":
                shutil.copyfile(f, b_gen / f.name)
    async with Store(b_url) as b:
        status = await memory.index_status(b)
        assert (status.origin, status.memories) == ("built", 100)
        await assert_recall_equals_table(b)


# -- damage ------------------------------------------------------------------------------------


def _damages(path: Path, other: Path | None) -> list[tuple[str, Callable[[], None]]]:
    def truncate() -> None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def flip(at: float) -> Callable[[], None]:
        def go() -> None:
            data = bytearray(path.read_bytes())
            if data:
                data[min(len(data) - 1, int(len(data) * at))] ^= 0x5A
            path.write_bytes(bytes(data))

        return go

    def empty() -> None:
        path.write_bytes(b"")

    def swap() -> None:
        assert other is not None
        shutil.copyfile(other, path)

    out: list[tuple[str, Callable[[], None]]] = [
        ("truncated", truncate),
        ("emptied", empty),
        ("deleted", path.unlink),
        ("flipped at the start", flip(0.0)),
        ("flipped in the middle", flip(0.5)),
        ("flipped at the end", flip(1.0)),
    ]
    if other is not None:
        out.append(("swapped with another store's", swap))
    return out


@dataclass(frozen=True)
class _Pristine:
    """A store and its saved index, copied aside, with another store's generation."""

    root: Path  # holds s/ (the store) and s.memindex/ (its index)
    other_gen: Path

    def restore(self, into: Path) -> tuple[str, Path]:
        """A fresh copy of the store and its index in ``into``: its URL and its generation."""
        shutil.copytree(self.root, into)
        folder = next((into / "s.memindex").iterdir())
        return f"surrealkv://{into / 's'}", generation(folder)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> _Pristine:
    root = tmp_path_factory.mktemp("pristine")

    async def make() -> Path:
        async with Store(f"surrealkv://{root / 'other' / 'o'}") as o:
            await write(o, range(120), tag="other")
        async with Store(f"surrealkv://{root / 'store' / 's'}") as s:
            ids = await write(s, range(150))
            for memory_id in ids[:5]:
                await memory.invalidate(s, memory=memory_id, reason="hidden")
        return generation(next((root / "other" / "o.memindex").iterdir()))

    other_gen = anyio.run(make, backend="asyncio")
    return _Pristine(root / "store", other_gen)


# What a generation holds: its files by kind (a text segment's files are named by its id).
_FILE_KINDS = [
    "manifest.json",
    "ids.txt",
    "rows.bin",
    "columns.npz",
    "vectors.hnsw",
    "vectors.npy",
    "text/meta.json",
    "text/.managed.json",
    *(f"text/*{suffix}" for suffix in (".idx", ".pos", ".term", ".store", ".fast", ".fieldnorm")),
]


@pytest.mark.parametrize("kind", _FILE_KINDS)
async def test_a_damage_walk_over_every_file_of_a_saved_index(
    pristine: _Pristine, tmp_path: Path, kind: str
) -> None:
    """Each file of a saved generation, truncated, emptied, deleted, flipped at three offsets
    and swapped with another store's: the index is rebuilt (loaded only where the bytes are
    as they were), recall equals the table, and nothing but a typed error could escape."""
    for case in range(7):
        url, gen = pristine.restore(tmp_path / str(case))
        (path,) = gen.glob(kind)
        rel = path.relative_to(gen)
        other = next(iter(pristine.other_gen.glob(kind)), None)
        damages = _damages(path, other)
        if case >= len(damages):
            continue
        label, damage = damages[case]
        before = path.read_bytes()
        damage()
        async with Store(url) as s:
            status = await memory.index_status(s)
            if status.origin == "loaded":  # only if the damage changed nothing
                assert path.exists() and path.read_bytes() == before, (rel, label)
            else:
                assert status.origin == "built", (rel, label)
            await assert_recall_equals_table(s, sample=8)
        # The next open loads what the close saved.
        async with Store(url) as s:
            assert (await memory.index_status(s)).origin == "loaded"


async def test_files_damaged_while_the_store_is_open_do_not_reach_it(kv_url: str) -> None:
    """After a load nothing of the saved generation reaches recall unchecked (the exact
    vectors, read at first use, are checked again then): every file truncated or overwritten
    in place (as a restore that copies over them would) while the store is open changes no
    recall of it, and the next open rebuilds."""
    async with Store(kv_url) as s:
        await write(s, range(1500))  # past 1,024: the vectors are used as read
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert status.origin == "loaded" and status.path is not None
        for f in generation(status.path).rglob("*"):
            if f.is_file():
                size = f.stat().st_size
                with f.open("r+b") as out:
                    out.truncate(size // 3)
                    out.seek(0)
                    out.write(b"\xff" * (size // 3))
        await assert_recall_equals_table(s, sample=40)
        await write(s, range(1500, 1510), tag="late")
        await assert_recall_equals_table(s, sample=20)
    async with Store(kv_url) as s:
        # The close saved a new generation; the damaged one is gone.
        assert (await memory.index_status(s)).origin == "loaded"
        await assert_recall_equals_table(s, sample=40)


# -- failures of the index's libraries ---------------------------------------------------------


class PanicException(BaseException):
    """What a panic in a Rust library's code (tantivy, through pyo3) arrives as."""


async def test_a_panic_in_a_search_rebuilds_the_index_and_answers(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Store(kv_url) as s:
        known = await write(s, range(60))
        real = DerivedIndex.matching
        calls = 0

        def panics_once(self: DerivedIndex, *args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise PanicException("index out of bounds")
            return real(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(DerivedIndex, "matching", panics_once)
        hits = await memory.recall(s, text="m7", k=1, mode="fulltext")
        assert [h.memory.id for h in hits] == [known[7]]
        assert (await memory.index_status(s)).origin == "built"

        def always(self: DerivedIndex, *args: object, **kwargs: object) -> object:
            raise PanicException("index out of bounds")

        monkeypatch.setattr(DerivedIndex, "matching", always)
        with pytest.raises(RecallIndexError, match="index out of bounds"):
            await memory.recall(s, text="m7", k=1, mode="fulltext")
        monkeypatch.setattr(DerivedIndex, "matching", real)
        await assert_recall_equals_table(s, sample=5)


async def test_a_kept_row_of_another_memory_is_never_returned(kv_url: str) -> None:
    async with Store(kv_url) as s:
        known = await write(s, range(20))
        index = derived_index(s)
        assert index is not None
        await memory.index_status(s)
        a, b = index.slot_of[known[3]], index.slot_of[known[4]]
        index.rows[a], index.rows[b] = index.rows[b], index.rows[a]  # as a damaged buffer would
        hits = await memory.recall(s, text="m3", k=1, mode="fulltext")
        assert [(h.memory.id, h.memory.content) for h in hits] == [(known[3], content(3))]


# -- who may touch the files --------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_a_non_owners_rebuild_changes_nothing_on_disk(kv_url: str, role: access.Role) -> None:
    async with Store(kv_url) as s:
        await write(s, range(80))
        await access.add_user(s, name="someone", password="a long secret", role=role)
        folder = (await memory.index_status(s)).path
    assert folder is not None
    before = _snapshot(folder.parent)
    async with Store(kv_url, username="someone", password="a long secret") as s:
        loaded = await memory.index_status(s)
        assert (loaded.origin, loaded.memories, loaded.path) == ("loaded", 80, None)
        rebuilt = await memory.rebuild_index(s)
        assert (rebuilt.origin, rebuilt.memories) == ("built", 80)
        await assert_recall_equals_table(s, sample=10)
    assert _snapshot(folder.parent) == before
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).origin == "loaded"


async def test_a_non_owner_never_trusts_files_without_the_databases_identity(
    kv_url: str,
) -> None:
    """Files beside a database that has no identity yet (never saved by its owner) are not
    used by a session that may not record one."""
    async with Store(kv_url) as s:
        await write(s, range(40))
        await access.add_user(s, name="someone", password="a long secret", role="viewer")
    async with Store(kv_url) as s:
        await s.execute("DELETE memory_index;")
    async with Store(kv_url, username="someone", password="a long secret") as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("built", 40)
        await assert_recall_equals_table(s, sample=5)


# -- kill -9 at any moment ---------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, anyio
    import numpy as np
    from surreal_store import Store, memory
    from surreal_store.memory import NewMemory

    def vec(i):
        return [float(x) for x in np.random.default_rng(i).normal(size=16)]

    def say(*words):
        print(*words, flush=True)

    async def main(url, phase, start):
        i = start
        async with Store(url) as s:
            say("ready")
            while True:
                if phase == "rebuild":
                    await memory.rebuild_index(s)
                elif phase == "catch-up":
                    # Raw writes: the index learns of them only from the feed.
                    for j in range(i, i + 40):
                        text = f"m{j} note about topic{j % 7}"
                        await s.execute(
                            "CREATE type::record('memory', $id) CONTENT {scope: 'default', "
                            "kind: 'note', content: $text, content_hash: crypto::sha256($text), "
                            "embedding: $vector, embedding_model: 'm'};",
                            id=memory.memory_id("default", text), text=text, vector=vec(j),
                        )
                    i += 40
                    say("acked", i)
                    await memory.recall(s, text=f"m{i - 1}", k=1, mode="fulltext")
                    await memory.invalidate(s, memory=memory.memory_id(
                        "default", f"m{i - 40} note about topic{(i - 40) % 7}"), reason="x")
                if phase == "save":
                    break
        # save: one memory, a recall, then the close saves; over and over.
        while True:
            async with Store(url) as s:
                text = f"m{i} note about topic{i % 7}"
                await memory.remember(s, content=text, embedding=vec(i))
                i += 1
                say("acked", i)
                await memory.recall(s, text=f"m{i - 1}", k=1, mode="fulltext")

    if sys.argv[2] == "reindex":  # the command itself, over and over, in this process
        from surreal_store._cli import app
        say("ready")
        while True:
            try:
                app(["reindex", "--url", sys.argv[1], "-q"], prog_name="surreal-store")
            except SystemExit as exc:
                assert not exc.code, exc.code
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), backend="asyncio")
    """
)


def _kill_after(args: list[str], *, ready: str | None, delay: float) -> int:
    """Run a child, SIGKILL it ``delay`` seconds after it says ``ready`` (or after it starts,
    with ``ready=None``); return the last count it acknowledged (0 if none)."""
    lines: list[str] = []
    said_ready = threading.Event()
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        out = proc.stdout

        def read() -> None:  # whole lines, as the child flushes them
            for line in out:
                lines.append(line)
                if line.strip() == ready:
                    said_ready.set()
            said_ready.set()  # ended

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if ready is not None:
                said_ready.wait(timeout=60)
            time.sleep(delay)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(timeout=10)
    acked = [int(line.split()[1]) for line in lines if line.startswith("acked ")]
    return max(acked, default=0)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["rebuild", "reindex", "save", "catch-up"])
async def test_kill_9_at_random_moments_leaves_recall_equal_to_the_table(
    tmp_path: Path, phase: str
) -> None:
    """Six kills per phase (a rebuild, ``surreal-store reindex``, the save at a close, a
    catch-up after raw writes), at random moments: every acknowledged memory is found by full
    text and by vector, and nothing the table lacks is returned."""
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as s:
        await write(s, range(300))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    rng = np.random.default_rng(sum(map(ord, phase)))
    acked = set(range(300))
    for round_ in range(6):
        base = 1000 * (round_ + 1)
        args = [sys.executable, str(script), url, phase, str(base)]
        got = _kill_after(args, ready="ready", delay=float(rng.uniform(0.02, 0.6)))
        acked |= set(range(base, got))
        async with Store(url) as s:
            held = await table(s)
            for j in sorted(acked):
                assert memory.memory_id("default", content(j)) in held, j
            await assert_recall_equals_table(s)


async def test_recalls_and_writes_while_the_index_is_rebuilt_in_the_same_process(
    kv_url: str,
) -> None:
    """A rebuild replaces the index under recalls that chose their filters' slots before it
    (a slot then names another memory): each recall still answers exactly, and writes made
    meanwhile are found."""
    async with Store(kv_url) as s:
        await write(s, range(200))
        await memory.recall(s, text="m1", k=1)
        stop = False
        wrong: list[object] = []
        done = 0

        async def recaller(seed: int) -> None:
            nonlocal done
            rng = np.random.default_rng(seed)
            while not stop:
                i = int(rng.integers(200))
                for hits in (
                    await memory.recall(s, text=f"m{i}", k=1, mode="fulltext"),
                    await memory.recall(s, vector=vec(i), k=1, tags=[]),
                ):
                    if [h.memory.content for h in hits] != [content(i)]:
                        wrong.append((i, [h.memory.content for h in hits]))
                done += 1

        written: list[int] = []

        async def writer() -> None:
            j = 5000
            while not stop:
                await memory.remember(s, content=content(j), embedding=vec(j))
                written.append(j)
                j += 1
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            for seed in range(3):
                tg.start_soon(recaller, seed)
            tg.start_soon(writer)
            for _ in range(12):
                await memory.rebuild_index(s)
                await anyio.sleep(0.01)
            stop = True
        assert done >= 3 and not wrong
        for j in written:
            hits = await memory.recall(s, text=f"m{j}", k=1, mode="fulltext")
            assert [h.memory.content for h in hits] == [content(j)]
        await assert_recall_equals_table(s, sample=20)


async def test_a_removed_memory_table_is_never_answered_for(kv_url: str) -> None:
    """Raw DDL: a memory table removed and defined again is read again (its feed says so; the
    removed table's changes, which the feed keeps, are not replayed), and a store reopened on
    a removed table answers as the database does, not from its saved files."""
    async with Store(kv_url) as s:
        await write(s, range(50))
        await memory.recall(s, text="m1", k=1)
        await s.execute("REMOVE TABLE memory; DEFINE TABLE memory SCHEMALESS CHANGEFEED 30d;")
        text = content(900, "after")
        await s.execute(
            "CREATE type::record('memory', $id) CONTENT {scope: 'default', kind: 'note', "
            "content: $text, content_hash: crypto::sha256($text), embedding: $vector, "
            "created_at: time::now(), valid_from: time::now()};",
            id=memory.memory_id("default", text),
            text=text,
            vector=vec(900),
        )
        assert (await memory.index_status(s)).memories == 1
        for hits in (
            await memory.recall(s, text="note", k=10, mode="fulltext"),
            await memory.recall(s, vector=vec(1), k=10),
        ):
            assert [h.memory.content for h in hits] == [text]
        await s.execute("REMOVE TABLE memory;")
    async with Store(kv_url, check_schema=False) as s:
        with pytest.raises(NotFoundError, match="memory"):
            await memory.recall(s, text="after900", k=1, mode="fulltext")


async def test_an_owner_and_an_editor_open_together_keep_apart_indexes(kv_url: str) -> None:
    """Stores of several sign-ins share a connection: the editor's recall index is its own
    (kept in memory), so its rebuild and its saves never touch the files the owner's writes."""
    async with Store(kv_url) as s:
        await write(s, range(60))
        await access.add_user(s, name="ed", password="a long secret", role="editor")
    async with Store(kv_url) as owner:
        folder = (await memory.index_status(owner)).path
        assert folder is not None
        before = _snapshot(folder.parent)
        async with Store(kv_url, username="ed", password="a long secret") as editor:
            assert (await memory.index_status(editor)).path is None
            await write(editor, range(60, 6000 + 60))  # past a catch-up's save
            await memory.rebuild_index(editor)
            assert _snapshot(folder.parent) == before
            await assert_recall_equals_table(editor, sample=10)
            await assert_recall_equals_table(owner, sample=10)
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("loaded", 6060)
