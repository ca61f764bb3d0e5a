"""Content-addressed blobs: bytes stored once under their SHA-256.

::

    digest = await cas.put(store, data=b"...")
    assert await cas.get(store, digest=digest) == b"..."
"""

from __future__ import annotations

import hashlib

from ._api import public
from ._errors import ValidationError
from ._executor import Executor, present
from ._ids import HEX64
from ._types import RecordId

__all__ = ["contains", "delete", "digest_of", "get", "normalise_digest", "put"]


@public
def digest_of(data: bytes) -> str:
    """The lowercase hex SHA-256 of ``data``: its address."""
    return hashlib.sha256(data).hexdigest()


@public
def normalise_digest(digest: str) -> str:
    """``digest`` lower-cased, or ``ValidationError`` if it is not 64 hex characters."""
    if not isinstance(digest, str) or not HEX64.match(digest):
        raise ValidationError(f"invalid digest {digest!r}: expected 64 hex characters (SHA-256)")
    return digest.lower()


def _id(digest: str) -> RecordId:
    return RecordId("blob", normalise_digest(digest))


# INSERT IGNORE: the same bytes a second time are a no-op, not an error (the seed failed here).
_PUT = "INSERT IGNORE INTO blob [{ id: $id, data: $data, size: $size }] RETURN NONE;"


@public(agents=False)
async def put(db: Executor, *, data: bytes) -> str:
    """Store ``data`` (once, however often it is put) and return its digest."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(f"blob data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    digest = digest_of(data)
    await db.execute(_PUT, id=RecordId("blob", digest), data=data, size=len(data), idempotent=True)
    return digest


_GET = "SELECT VALUE data FROM ONLY $id;"


@public(agents=False)
async def get(db: Executor, *, digest: str) -> bytes:
    """The bytes stored under ``digest``; ``NotFoundError`` if there are none."""
    key = _id(digest)
    return present(await db.query_single(_GET, bytes, id=key), f"no blob {key.key}")


_CONTAINS = "RETURN record::exists($id);"


@public(agents=False)
async def contains(db: Executor, *, digest: str) -> bool:
    """Whether bytes are stored under ``digest``."""
    return await db.query_required_single(_CONTAINS, bool, id=_id(digest))


_DELETE = "DELETE $id;"


@public(agents=False)
async def delete(db: Executor, *, digest: str) -> None:
    """Remove the blob; deleting an absent digest is a no-op."""
    await db.execute(_DELETE, id=_id(digest), idempotent=True)
