"""The boundary to the ``surrealdb`` SDK and its embedded engine: the only package that
imports the SDK (tests/test_layers.py checks it).

- :mod:`._codec`: values to the SDK and back, and the decoding of the engine's CBOR answers;
- :mod:`._answers`: every statement's result, failures as our errors, rows validated;
- :mod:`._embedded`: the embedded connection, shared by the stores of a process on one set of
  files, and its reopen before the write-ahead log fills;
- :mod:`._signin`: who a session is, and signing in;
- :mod:`._exit`: the engine at interpreter exit.

Importing this package loads no part of the SDK: the store loads these modules when it opens,
so that ``import surreal_store`` stays light.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["precise_datetime"]


def precise_datetime(text: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp with up to nine fractional digits, as a datetime that keeps
    its nanoseconds when written (:func:`._codec.precise_datetime`)."""
    from ._codec import precise_datetime

    return precise_datetime(text)
