"""How the recall index fails, and what each failure means to its callers: the index is
behind the table (:class:`Stale`: catch up and ask again), this session cannot follow the
table (:class:`FeedUnavailable`: recall scans the database), or the index's own state or
libraries failed (:class:`Broken`: rebuild it from the table).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..._errors import StoreError

__all__ = ["Broken", "FeedUnavailable", "Stale", "guarded", "is_library_failure"]


class FeedUnavailable(Exception):
    """This session cannot read the memory table's change feed (an agent's)."""


class Stale(Exception):
    """The index was behind the table (or the embedding space had changed) when a read was
    checked against it: catch up (from what the look saw, :func:`catch_up`), then ask again."""

    def __init__(
        self,
        since: int,
        limit: int,
        entries: list[dict[str, Any]],
        space: dict[str, Any] | None,
        *,
        space_read: bool = True,
    ) -> None:
        super().__init__("the memory table changed since the index's versionstamp")
        self.since = since
        self.limit = limit  # the page's size in transactions: a full page may have more after
        self.entries = entries
        self.space = space
        # Whether ``space`` is the space as of the look: read by it, or, for a look whose
        # page shows no change to the space, the one it had. A look whose page shows the
        # space changed did not read it: catching up does.
        self.space_read = space_read


class Broken(Exception):
    """The index failed in a way that says its state is not to be trusted: it is rebuilt."""


def is_library_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from the index's own state or libraries (numpy, zipfile, hnswlib,
    tantivy, cbor2) rather than from the database or the caller. A panic in a library's
    Rust code arrives as ``pyo3_runtime.PanicException``, a ``BaseException``."""
    if isinstance(exc, StoreError | Stale | FeedUnavailable):
        return False
    if isinstance(exc, Exception):
        return True
    return type(exc).__name__ == "PanicException"


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Turn a failure of the index's libraries inside the block into :class:`Broken`."""
    try:
        yield
    except Broken:
        raise
    except BaseException as exc:
        if not is_library_failure(exc):
            raise
        raise Broken(f"{type(exc).__name__}: {exc}") from exc
