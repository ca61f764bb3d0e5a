"""Objects pickled under a module path the package has since left still load."""

from __future__ import annotations

import base64
import datetime as dt
import pickle
from pathlib import Path

from surreal_store import memory

# pickle.dumps of an EmbeddingSpace made by the code at 24e93a4, where the class lived in
# surreal_store._space (Python 3.11, protocol 4).
_OLD_SPACE = base64.b64decode(
    "gASVGwIAAAAAAACMFHN1cnJlYWxfc3RvcmUuX3NwYWNllIwORW1iZWRkaW5nU3BhY2WUk5QpgZR9lCiMCF9fZGlj"
    "dF9flH2UKIwFbW9kZWyUjBBhbGwtTWluaUxNLUw2LXYylIwJZGltZW5zaW9ulE2AAYwGbWV0cmljlIwGY29zaW5l"
    "lIwKaW5kZXhfa2luZJSMBGhuc3eUjAZobnN3X22USwyMCGhuc3dfZWZjlEuWjA5kaXNrYW5uX2RlZ3JlZZRLQIwP"
    "ZGlza2Fubl9sX2J1aWxklEtkjAZzdGF0dXOUjAtyZWVtYmVkZGluZ5SMDHRhcmdldF9tb2RlbJSMG3N1cnJlYWwt"
    "c3RvcmUvaGFzaGluZy12MS02NJSMEHRhcmdldF9kaW1lbnNpb26US0CMB2luZGV4ZWSUSwCMCXVuaW5kZXhlZJRL"
    "A4wIYnVpbHRfYXSUTowKY3JlYXRlZF9hdJSMCGRhdGV0aW1llIwIZGF0ZXRpbWWUk5RDCgfqDAEJHgAAAACUaBuM"
    "CHRpbWV6b25llJOUaBuMCXRpbWVkZWx0YZSTlEsASwBLAIeUUpSFlFKUhpRSlIwKdXBkYXRlZF9hdJROdYwSX19w"
    "eWRhbnRpY19leHRyYV9flE6MF19fcHlkYW50aWNfZmllbGRzX3NldF9flI+UKGgJaBhoEmgUaAdoGmgWkIwUX19w"
    "eWRhbnRpY19wcml2YXRlX1+UTnViLg=="
)


def _loaded(blob: bytes, old_path: bytes) -> object:
    """The object pickled in ``blob`` under ``old_path``, checked to pickle again under the
    class's path now."""
    assert old_path in blob
    loaded = pickle.loads(blob)
    again = pickle.dumps(loaded)
    assert b"surreal_store.memory._models" in again and pickle.loads(again) == loaded
    return loaded


def test_an_embedding_space_pickled_under_its_old_path_loads() -> None:
    space = _loaded(_OLD_SPACE, b"surreal_store._space")
    assert type(space) is memory.EmbeddingSpace
    assert space == memory.EmbeddingSpace(
        model="all-MiniLM-L6-v2",
        dimension=384,
        status="reembedding",
        target_model="surreal-store/hashing-v1-64",
        target_dimension=64,
        unindexed=3,
        created_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
    )
    assert (space.writing_model, space.index_dimension) == ("surreal-store/hashing-v1-64", 64)


# pickle.dumps of an IndexStatus made by the code at 24e93a4, where the class lived in
# surreal_store.memory._derived (Python 3.11, protocol 4).
_OLD_STATUS = base64.b64decode(
    "gASV3QAAAAAAAACMHXN1cnJlYWxfc3RvcmUubWVtb3J5Ll9kZXJpdmVklIwLSW5kZXhTdGF0dXOUk5QpgZR9lCiM"
    "Bm9yaWdpbpSMBmxvYWRlZJSMCG1lbW9yaWVzlE0sAYwHdmVjdG9yc5RNKwGMDHZlcnNpb25zdGFtcJRKAAABAIwJ"
    "Y2F1Z2h0X3VwlEsCjARwYXRolIwHcGF0aGxpYpSMCVBvc2l4UGF0aJSTlIwBL5SMBGRhdGGUjBFhZ2VudC5kYi5t"
    "ZW1pbmRleJSHlFKUjAdidWlsZF9zlEc/0AAAAAAAAHViLg=="
)


def test_an_index_status_pickled_under_its_old_path_loads() -> None:
    status = _loaded(_OLD_STATUS, b"surreal_store.memory._derived")
    assert type(status) is memory.IndexStatus
    where = Path("/data/agent.db.memindex")
    assert status == memory.IndexStatus("loaded", 300, 299, 65536, 2, where, 0.25)
