"""The store's event loop, for the doors (LangGraph, LangChain, MCP): every call a door makes
on the store runs there, whether it comes from the store's loop, another loop, or a thread
with no loop (the sync methods); and a store can be owned on a loop of its own in a
background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    contextmanager,
    suppress,
)
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._client import Store
from .._errors import PermissionDeniedError, StoreStateError

__all__ = [
    "Home",
    "current_loop",
    "entered_in_background",
    "run_detached",
    "sync_opener",
]

T = TypeVar("T")
_POLL_S = 0.5  # how often a waiting sync call checks that the store's loop still runs
C = TypeVar("C")
P = ParamSpec("P")


def current_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, if any: where an object made now will find its store."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Home:
    """Where a door's store lives: the event loop its connection was opened on (or, for a
    store not open yet, the loop the door was made on).

    :meth:`run` awaits a coroutine there from any loop (a store opened on a background loop
    serves async callers elsewhere too); :meth:`wait` runs one there from a thread without a
    loop and waits for it, which is every sync method of the doors. ``what`` names the door's
    object in refusals (``"saver"``, ``"store"``). ``closed_to_agents``: the name of a door
    whose tables are closed to agents, refused at once for a store that signs in as one."""

    def __init__(self, store: Store, what: str, *, closed_to_agents: str | None = None) -> None:
        agent = store.settings.agent is not None or store.signed_in_as.kind == "agent"
        if closed_to_agents is not None and agent:
            raise PermissionDeniedError(
                f"{closed_to_agents}: its tables are closed to agents (docs/access.md); it runs "
                "under a user (an editor); nothing was sent"
            )
        self.store = store
        self.made_on = current_loop()
        self.what = what
        self._idle = threading.Lock()  # one thread at a time runs an idle loop (wait)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The store's loop once it is open (whenever the door was made), else the loop the
        door was made on."""
        return self.store.loop or self.made_on

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the store's loop."""
        loop = self.loop
        if loop is None or loop is asyncio.get_running_loop() or not loop.is_running():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def wait(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the store's loop from another thread and wait for its result; on a
        loop that is open but idle (no thread runs it), run it there from this thread."""
        loop = self.loop
        refusal = None
        if loop is None:
            refusal = (
                f"the sync methods need the {self.what} to be made on a running event loop "
                "or its store to be open on one; use the async methods there"
            )
        elif loop.is_closed():
            refusal = (
                f"the event loop the {self.what}'s store was opened on is closed: the sync "
                f"methods need the {self.what} to be made on a running event loop (the store's)"
            )
        elif current_loop() is loop:
            refusal = (
                "a sync method was called on the store's own event loop, which would wait on "
                "itself: use the async methods (graph.ainvoke, aget, ...) there"
            )
        elif not loop.is_running():
            if current_loop() is not None:
                refusal = (
                    "the store's event loop is not running, and this thread runs another: "
                    "use the async methods"
                )
            else:
                with self._idle:
                    try:
                        return loop.run_until_complete(coro)
                    except RuntimeError as exc:
                        if "already running" not in str(exc) and "closed" not in str(exc):
                            raise
                        refusal = f"the store's event loop was taken meanwhile ({exc})"
        if refusal is not None:
            coro.close()
            raise StoreStateError(refusal)
        assert loop is not None
        done = asyncio.run_coroutine_threadsafe(coro, loop)
        while True:  # a loop that stops running before the call ends would leave it waiting
            try:
                return done.result(timeout=_POLL_S)
            except concurrent.futures.TimeoutError:
                if not loop.is_running():
                    done.cancel()
                    raise StoreStateError(
                        "the store's event loop stopped before the call ended"
                    ) from None


def run_detached(coro: Coroutine[Any, Any, T], what: str) -> T:
    """Run ``coro`` to completion on a loop of its own, for a sync method with no store behind
    it (an embedder's); inside a running loop that would block it, so it is refused."""
    if current_loop() is not None:
        coro.close()
        raise StoreStateError(f"inside an event loop, use {what}")
    return asyncio.run(coro)


@contextmanager
def entered_in_background(opener: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Enter ``opener()`` on an event loop of its own in a background thread and yield what it
    yields; on exit it is left there and the thread ends. An error entering it is raised
    here."""
    ready: concurrent.futures.Future[T] = concurrent.futures.Future()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def own() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        try:
            async with opener() as entered:
                ready.set_result(entered)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                raise

    thread = threading.Thread(
        target=lambda: asyncio.run(own()), name="surreal-store-loop", daemon=True
    )
    thread.start()
    try:
        yield ready.result()
    finally:
        if loop is not None and stop is not None:
            with suppress(RuntimeError):  # the loop ended already (the open failed)
                loop.call_soon_threadsafe(stop.set)
        thread.join()


def sync_opener(
    opener: Callable[Concatenate[type[C], P], AbstractAsyncContextManager[T]], doc: str
) -> classmethod[C, P, AbstractContextManager[T]]:
    """The sync twin of a door's ``from_url``: a classmethod taking the same arguments that
    enters ``from_url`` on an event loop of its own in a background thread
    (:func:`entered_in_background`), so the object it yields serves sync calls from this
    thread. ``doc`` is its docstring."""
    # In a class body the opener is the classmethod object; mypy types it as its function.
    fn: Callable[Concatenate[type[C], P], AbstractAsyncContextManager[T]] = getattr(
        opener, "__func__", opener
    )

    def sync(cls: type[C], /, *args: P.args, **kwargs: P.kwargs) -> AbstractContextManager[T]:
        return entered_in_background(lambda: fn(cls, *args, **kwargs))

    signature = inspect.signature(fn)
    returns = signature.return_annotation
    if isinstance(returns, str):  # AsyncIterator[X] -> Iterator[X], as help() shows it
        returns = returns.removeprefix("Async")
    sync.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
    sync.__name__, sync.__qualname__ = f"{fn.__name__}_sync", f"{fn.__qualname__}_sync"
    sync.__doc__ = doc
    return classmethod(sync)
