"""What the engine boundary takes from the ``surrealdb`` SDK, read from the SDK's own modules.

The SDK package's ``__init__`` also loads its HTTP clients (aiohttp, requests: about 0.3 s of
CPU in every process) that an embedded store never uses. This module puts the package in place
without running that ``__init__``, then imports the SDK modules the boundary needs; the
``__init__`` runs the first time anyone reads a name only it defines (:func:`AsyncSurreal` for
a server, or ``surrealdb.X`` anywhere else in the process), so ``import surrealdb`` elsewhere
still gets the whole package. The other modules of ``_engine`` import the SDK through here.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import TYPE_CHECKING, Any


def _package_on_demand() -> None:
    if "surrealdb" in sys.modules:
        return
    spec = importlib.util.find_spec("surrealdb")
    if spec is None or spec.loader is None:
        return  # the imports below say what is missing
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)
    lock = threading.RLock()

    def complete(name: str) -> Any:
        with lock:
            if package.__dict__.get("__getattr__") is complete:
                del package.__dict__["__getattr__"]
                loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = complete
    sys.modules["surrealdb"] = package


_package_on_demand()

# After the package is in place: these import the SDK's modules, not its __init__.
from surrealdb.connections.async_embedded import AsyncEmbeddedSurrealConnection  # noqa: E402
from surrealdb.connections.async_ws import AsyncWsSurrealConnection  # noqa: E402
from surrealdb.connections.url import Url, UrlScheme  # noqa: E402
from surrealdb.connections.utils_mixin import mapped_engine_errors  # noqa: E402
from surrealdb.data import cbor  # noqa: E402
from surrealdb.data.types import constants  # noqa: E402
from surrealdb.data.types.datetime import PreciseDatetime  # noqa: E402
from surrealdb.data.types.duration import Duration  # noqa: E402
from surrealdb.data.types.null import Null, NullType  # noqa: E402
from surrealdb.data.types.record_id import RecordID  # noqa: E402
from surrealdb.data.types.table import Table  # noqa: E402
from surrealdb.errors import (  # noqa: E402
    InvalidUrlError,
    ServerError,
    SurrealError,
    TransportError,
    TransportTimeoutError,
    UnsupportedEngineError,
)
from surrealdb.request_message.message import RequestMessage  # noqa: E402
from surrealdb.request_message.methods import RequestMethod  # noqa: E402

if TYPE_CHECKING:
    from surrealdb import AsyncSurrealConnection as AsyncSurrealConnection

__all__ = [
    "AsyncEmbeddedSurrealConnection",
    "AsyncSurreal",
    "AsyncSurrealConnection",
    "AsyncWsSurrealConnection",
    "Duration",
    "InvalidUrlError",
    "Null",
    "NullType",
    "PreciseDatetime",
    "RecordID",
    "RequestMessage",
    "RequestMethod",
    "ServerError",
    "SurrealError",
    "Table",
    "TransportError",
    "TransportTimeoutError",
    "UnsupportedEngineError",
    "Url",
    "UrlScheme",
    "cbor",
    "constants",
    "mapped_engine_errors",
]


def AsyncSurreal(url: str) -> AsyncSurrealConnection:
    """The SDK's connection to the server at ``url`` (loads the whole SDK package)."""
    import surrealdb

    connect: Any = surrealdb.AsyncSurreal
    conn: AsyncSurrealConnection = connect(url)
    return conn
