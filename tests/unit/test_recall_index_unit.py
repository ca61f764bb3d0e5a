"""The recall index's pure parts, without an engine: text analysis, the kept rows, the index
and its search (filters, vectors, text), and saving and loading a generation of its files.

The engine tests (tests/test_memory_index.py, tests/test_memory_index_files.py) prove that the
index agrees with the database; these pin down what each part does on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surreal_store import RecordId
from surreal_store._engine._codec import precise_datetime
from surreal_store.memory._recall_index import _files, _persist
from surreal_store.memory._recall_index._analysis import analysable, text_analyzer
from surreal_store.memory._recall_index._index import DerivedIndex, key_of
from surreal_store.memory._recall_index._rows import Rows, decode_row, encode_row
from surreal_store.memory._recall_index._times import ns

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def key(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs)) or 1.0
    return [x / norm for x in xs]


def record(
    n: int,
    content: str,
    vector: list[float] | None,
    *,
    scope: str = "default",
    tags: list[str] | None = None,
    invalidated: dt.datetime | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": RecordId("memory", key(n)),
        "scope": scope,
        "kind": "note",
        "key": None,
        "agent": None,
        "commit": None,
        "content": content,
        "tags": tags or [],
        "metadata": {"n": n},
        "created_at": T0 + dt.timedelta(minutes=n),
        "valid_from": T0 + dt.timedelta(minutes=n),
        "valid_until": None,
        "invalidated_at": invalidated,
    }
    if vector is not None:
        row["embedding"] = cbor2.dumps(vector)  # as schema 019 stores it
    return row


# -- text analysis ---------------------------------------------------------------------------


def test_analysis_drops_function_words_and_splits_letters_from_digits() -> None:
    assert analysable("The cat, and THE dog!").split() == ["cat", "dog"]
    terms = text_analyzer().analyze(analysable("Running E1234 snake_case"))
    assert terms == ["run", "e", "1234", "snake", "_", "case"]


# -- kept rows -------------------------------------------------------------------------------


def test_a_row_comes_back_equal_with_nanoseconds_and_record_ids() -> None:
    at = precise_datetime("2026-03-04T05:06:07.123456789Z")
    row = {
        "id": RecordId("memory", key(1)),
        "agent": RecordId("agent", "scout"),
        "created_at": at,
        "metadata": {"a": [1, 2.5, None, {"b": True}], "s": "naïve"},
    }
    data = encode_row(row)
    assert data is not None
    back = decode_row(data)
    assert back == row
    assert back["created_at"].nanosecond == 789


def test_a_row_with_a_value_it_cannot_keep_is_not_kept() -> None:
    assert encode_row({"span": dt.timedelta(seconds=1)}) is None
    assert encode_row({"local": dt.datetime(2026, 1, 1)}) is None  # no UTC offset
    assert encode_row({"keys": {1: "x"}}) is None


def test_rows_pack_and_load_by_slot() -> None:
    rows = Rows()
    for value in (b"a", None, b"ccc"):
        rows.append(value)
    blob, ends = rows.packed()
    loaded = Rows(blob, ends)
    assert [loaded[i] for i in range(3)] == [b"a", None, b"ccc"]
    loaded[1] = b"b"
    loaded.append(b"d")
    assert [loaded[i] for i in range(4)] == [b"a", b"b", b"ccc", b"d"]
    with pytest.raises(IndexError):
        Rows(blob, ends)[3]


# -- the index and its search ----------------------------------------------------------------


def sample() -> DerivedIndex:
    index = DerivedIndex(None)
    index.apply(
        [
            record(0, "tea with milk", unit(1, 0, 0), tags=["drink"]),
            record(1, "coffee, black", unit(0, 1, 0), tags=["drink"]),
            record(2, "a walk in the park", unit(0, 0, 1), scope="other"),
            record(3, "green tea at noon", unit(1, 0.2, 0), invalidated=T0),
            record(4, "no vector, only tea", None),
        ]
    )
    index.commit_text()
    return index


def keys_of(index: DerivedIndex, hits: list[tuple[int, float]]) -> list[str | None]:
    return [index.ids[slot] for slot, _ in hits]


def test_nearest_vectors_within_the_filters() -> None:
    index = sample()
    live = index.mask({}, include_invalidated=False)
    assert keys_of(index, index.nearest(unit(1, 0.1, 0), live, 2, 64)) == [key(0), key(1)]
    every = index.mask({}, include_invalidated=True)
    assert keys_of(index, index.nearest(unit(1, 0.2, 0), every, 1, 64)) == [key(3)]
    other = index.mask({"scope": "other"}, include_invalidated=False)
    assert keys_of(index, index.nearest(unit(1, 0, 0), other, 5, 64)) == [key(2)]
    assert index.nearest(unit(1, 0), live, 5, 64) == []  # another dimension finds nothing


def test_masks_admit_exactly_the_filters() -> None:
    index = sample()
    drink = index.mask({"tags": ["drink"]}, include_invalidated=False)
    assert sorted(np.flatnonzero(drink).tolist()) == [0, 1]
    later = index.mask({"created_after": T0 + dt.timedelta(minutes=2)}, include_invalidated=True)
    assert sorted(np.flatnonzero(later).tolist()) == [2, 3, 4]
    unknown = index.mask({"scope": "nobody"}, include_invalidated=True)
    assert not unknown.any()
    assert index.mask({"tags": ["drink"]}, include_invalidated=False) is drink  # kept
    narrowed = index.admit_only(drink, [key(1), key(99)])
    assert np.flatnonzero(narrowed).tolist() == [1]


def test_text_search_of_every_term_or_any() -> None:
    index = sample()
    live = index.mask({}, include_invalidated=False)
    terms = index.terms("Tea with noon")
    assert terms == ["tea", "noon"]
    assert keys_of(index, index.matching(terms, live, 5, every=True)) == []  # 3 is invalidated
    found = keys_of(index, index.matching(terms, live, 5, every=False))
    assert sorted(k for k in found if k) == sorted([key(0), key(4)])


def test_updates_deletions_and_kept_rows() -> None:
    index = sample()
    index.apply([record(0, "tea with milk", unit(0, 1, 0), tags=["drink"])], deleted=[key(1)])
    index.commit_text()
    live = index.mask({}, include_invalidated=False)
    assert keys_of(index, index.nearest(unit(0, 1, 0), live, 1, 64)) == [key(0)]
    assert key(1) not in index.slot_of
    kept = index.kept([index.slot_of[key(0)]])
    assert kept is not None and kept[0]["metadata"] == {"n": 0}
    assert "embedding" not in kept[0]
    status = index.status()
    assert (status.memories, status.vectors) == (4, 3)
    assert index.widen(live[:2]).shape == (index.size,)


def test_times_and_keys_as_the_columns_hold_them() -> None:
    at = precise_datetime("1970-01-01T00:00:01.000000002Z")
    assert ns(at) == 1_000_000_002
    assert ns(None) == np.iinfo(np.int64).max
    assert key_of(RecordId("agent", "a")) == "a"
    assert key_of(RecordId("agent", 1)) != key_of(RecordId("agent", "1"))


# -- saving and loading ----------------------------------------------------------------------


def test_a_saved_generation_loads_as_the_same_index(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    index = DerivedIndex(folder, owner=True)
    index.apply(sample_records())
    identity = _files.Identity(_files.new_token(), _files.new_token())
    gen = _persist.save(index, identity)
    assert gen.name == f"gen-{identity.epoch}"
    loaded = _persist.load(folder, identity, owner=True)
    try:
        assert loaded.ids == index.ids and loaded.codes == index.codes
        live = loaded.mask({}, include_invalidated=False)
        assert keys_of(loaded, loaded.nearest(unit(1, 0.1, 0), live, 1, 64)) == [key(0)]
        assert loaded.kept([0]) == index.kept([0])
        with pytest.raises(_files.Unusable):
            _persist.load(
                folder, _files.Identity(identity.database, _files.new_token()), owner=True
            )
        (gen / "rows.bin").write_bytes(b"damaged")
        with pytest.raises(_files.Unusable):
            _persist.load(folder, identity, owner=True)
    finally:
        loaded.drop_text()
        index.drop_text()


def sample_records() -> list[dict[str, Any]]:
    return [
        record(0, "tea with milk", unit(1, 0, 0), tags=["drink"]),
        record(1, "coffee, black", unit(0, 1, 0), tags=["drink"]),
        record(2, "a walk in the park", None),
    ]


# -- times outside the columns' range --------------------------------------------------------

# Times on both sides of int64 nanoseconds' range (1677-09-21 to 2262-04-11), at its edges and
# inside it: the columns hold those outside as stand-ins, and the index decides them exactly.
_FAR = [
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1500, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1500, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(1677, 9, 21, tzinfo=dt.UTC),
    dt.datetime(1677, 9, 22, tzinfo=dt.UTC),
    T0,
    dt.datetime(2262, 4, 11, tzinfo=dt.UTC),
    dt.datetime(2262, 4, 12, tzinfo=dt.UTC),
    dt.datetime(2300, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2300, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, tzinfo=dt.UTC),
]
_SOME = st.sampled_from(_FAR)
_MAYBE = st.one_of(st.none(), _SOME)


def _admits(row: dict[str, Any], v: dict[str, Any], include_invalidated: bool) -> bool:
    """What the database's filters admit (memory/_recall.py), on datetimes."""
    until, gone = row["valid_until"], row["invalidated_at"]
    ok = True
    if "created_after" in v:
        ok &= row["created_at"] >= v["created_after"]
    if "created_before" in v:
        ok &= row["created_at"] < v["created_before"]
    if "valid_at" in v:
        t = v["valid_at"]
        ok &= row["valid_from"] <= t and (until is None or until > t)
    if "as_of" in v:
        t = v["as_of"]
        ok &= row["created_at"] <= t and row["valid_from"] <= t and (until is None or until > t)
        if not include_invalidated:
            ok &= gone is None or gone > t
    elif not include_invalidated:
        ok &= gone is None
    return bool(ok)


@settings(max_examples=150)
@given(
    times=st.lists(st.tuples(_SOME, _SOME, _MAYBE, _MAYBE), min_size=1, max_size=8),
    filters=st.fixed_dictionaries(
        {},
        optional={
            "created_after": _SOME,
            "created_before": _SOME,
            "valid_at": _SOME,
            "as_of": _SOME,
        },
    ),
    include_invalidated=st.booleans(),
)
def test_times_outside_the_columns_range_are_filtered_exactly(
    times: list[tuple[dt.datetime, ...]],
    filters: dict[str, Any],
    include_invalidated: bool,
) -> None:
    rows = []
    for n, (created, valid_from, valid_until, gone) in enumerate(times):
        row = record(n, f"note {n}", None, invalidated=gone)
        row.update(created_at=created, valid_from=valid_from, valid_until=valid_until)
        rows.append(row)
    index = DerivedIndex(None)
    try:
        index.apply(rows)
        got = index.mask(filters, include_invalidated=include_invalidated)
        want = [n for n, row in enumerate(rows) if _admits(row, filters, include_invalidated)]
        assert np.flatnonzero(got).tolist() == want
    finally:
        index.drop_text()


def test_far_times_are_saved_exactly_and_a_change_replaces_them(tmp_path: Path) -> None:
    far, past = dt.datetime(2300, 1, 1, tzinfo=dt.UTC), dt.datetime(1500, 1, 1, tzinfo=dt.UTC)
    rows = [record(0, "far", None), record(1, "near", None), record(2, "old", None)]
    rows[0]["valid_until"] = far
    rows[2]["valid_from"] = past
    folder = tmp_path / "index"
    index = DerivedIndex(folder, owner=True)
    index.apply(rows)
    identity = _files.Identity(_files.new_token(), _files.new_token())
    gen = _persist.save(index, identity)
    body = json.loads((gen / _files.MANIFEST).read_text())["body"]
    assert body["format"] == _files.FAR_FORMAT  # a reader of format 7 alone refuses it
    loaded = _persist.load(folder, identity, owner=True)
    try:
        assert loaded.far == index.far == {0: {"valid_until": ns(far)}, 2: {"valid_from": ns(past)}}
        for at, want in ((dt.datetime(2280, 1, 1, tzinfo=dt.UTC), [0, 1, 2]), (far, [1, 2]),
                         (dt.datetime(1600, 1, 1, tzinfo=dt.UTC), [2])):  # fmt: skip
            assert (
                np.flatnonzero(loaded.mask({"valid_at": at}, include_invalidated=False)).tolist()
                == want
            )
        # The memory ends inside the range now: its stand-in and its exact time go.
        rows[0]["valid_until"] = T0 + dt.timedelta(days=1)
        loaded.apply([rows[0]])
        assert loaded.far == {2: {"valid_from": ns(past)}}
        assert np.flatnonzero(
            loaded.mask({"valid_at": far}, include_invalidated=False)
        ).tolist() == [1, 2]
    finally:
        loaded.drop_text()
        index.drop_text()
    index = DerivedIndex(folder, owner=True)
    index.apply([record(0, "near", None)])
    plain = _persist.save(index, _files.Identity(identity.database, _files.new_token()))
    index.drop_text()
    assert json.loads((plain / _files.MANIFEST).read_text())["body"]["format"] == _files.FORMAT
