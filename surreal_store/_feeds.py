"""Reading the database's change feed a page at a time.

A ``LIMIT`` on ``SHOW CHANGES FOR TABLE t`` counts the transactions of every table with a
feed, so a short page of one table's changes does not say that the reader reached the
present. Readers therefore page the database's feed (``SHOW CHANGES FOR DATABASE``), whose
short page does, and pick the changes of the tables they follow.
"""

from __future__ import annotations

from typing import Any

from ._types import RecordId

__all__ = ["look", "table_of", "tables_of"]


def look(since: int, limit: int) -> str:
    """The statement reading the database's feed from versionstamp ``since``, ``limit``
    transactions at most."""
    return f"SHOW CHANGES FOR DATABASE SINCE {int(since)} LIMIT {int(limit)};\n"


def table_of(change: dict[str, Any]) -> str | None:
    """The table a change of the database's feed is to."""
    for kind in ("update", "delete"):
        body = change.get(kind)
        if isinstance(body, dict):
            record = body.get("id")
            return record.table if isinstance(record, RecordId) else None
    body = change.get("define_table")
    if isinstance(body, dict):
        name = body.get("name")
        return name if isinstance(name, str) else None
    return None


def tables_of(entries: list[dict[str, Any]], tables: tuple[str, ...]) -> list[list[dict[str, Any]]]:
    """``entries`` of the database's feed as one feed per table of ``tables``, in that order:
    each entry keeps its versionstamp and the changes to that table (entries with none are
    left out), as ``SHOW CHANGES FOR TABLE`` would answer them."""
    feeds: list[list[dict[str, Any]]] = [[] for _ in tables]
    at = {t: i for i, t in enumerate(tables)}
    for entry in entries:
        split: dict[int, list[dict[str, Any]]] = {}
        for change in entry.get("changes", ()):
            i = at.get(table_of(change) or "")
            if i is not None:
                split.setdefault(i, []).append(change)
        for i, changes in split.items():
            feeds[i].append({**entry, "changes": changes})
    return feeds
