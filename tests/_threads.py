"""Running one function in several threads at once, for the tests of the doors' sync paths."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["errors_in_threads"]


def errors_in_threads(
    worker: Callable[[int], None], count: int, *, timeout: float = 60
) -> list[BaseException]:
    """Run ``worker(0)`` ... ``worker(count - 1)``, each in a thread of its own, all started
    before any is waited for; what they raised (an empty list when none did), and a
    ``TimeoutError`` for each still running after ``timeout`` seconds."""
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            worker(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    hung = [TimeoutError(f"{t.name} still runs after {timeout} s") for t in threads if t.is_alive()]
    return [*errors, *hung]
