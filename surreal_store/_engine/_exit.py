"""The embedded engine at interpreter exit: stores left open are closed, and the engine's
worker threads get a moment to let go of their Python objects.

Each answer of the engine reaches Python from one of its worker threads, which lets go of its
Python objects a moment after the answer arrives. A script that ends right after its last call
can start shutting the interpreter down within that moment; the worker then finds no
interpreter to attach to and the process aborts (SIGABRT, "panic in a function that cannot
unwind"). The exit hook, installed when the first embedded store opens, closes any store left
open and waits until :attr:`EmbeddedEngine.settle_s` has passed since the engine's last answer
(nothing, if the script did other work since). ``scripts/exit_status.py`` runs short scripts
to check it.
"""

from __future__ import annotations

import atexit
import time
import weakref
from collections.abc import Callable

__all__ = ["EmbeddedEngine", "engine"]


class EmbeddedEngine:
    """The process's record of the embedded engine: when it last answered, and the stores
    to close at exit."""

    settle_s = 0.05

    def __init__(self) -> None:
        self._last = 0.0
        self._open: list[weakref.WeakMethod[Callable[[], None]]] = []
        self._installed = False

    def answered(self) -> None:
        """Note that the engine answered (or a connection closed) now."""
        self._last = time.monotonic()

    def opened(self, close_at_exit: Callable[[], None]) -> None:
        """Remember a store's bound method that closes it at exit if it is still open; the
        store is not kept alive by it."""
        self._open = [m for m in self._open if m() is not None]
        self._open.append(weakref.WeakMethod(close_at_exit))
        if not self._installed:
            self._installed = True
            atexit.register(self.at_exit)

    def at_exit(self) -> None:
        for method in list(self._open):
            close = method()
            if close is not None:
                close()
        wait = self._last + self.settle_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)


engine = EmbeddedEngine()
