"""When a call is tried again, in one place.

Two kinds of retry exist, and both are built here:

- **Replays** of one query by the client after a :class:`TransportError` or a
  :class:`ConflictError` (:func:`may_replay`). A query is replayed only if replaying it is
  harmless: a read; a call its author marked ``idempotent=True``, which promises that a second
  run after a first that committed changes nothing (writes keyed by content or guarded by an
  existence check, counters moved only by what was actually written); or, on a conflict only,
  a query that is one statement or one ``BEGIN ... COMMIT`` block, since a lost conflict means
  none of it was applied. A timed-out write is never replayed: its outcome is unknown.
- **Domain retries** (:func:`again`) of a whole step after an answer that says trying again
  may go differently: a derivation graph that changed under an invalidation (``StaleError``),
  a racing writer of the same content (``AlreadyExistsError``), a held schema lock.

Both wait with jittered exponential backoff on anyio's clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from . import _errors as e
from ._surql import QueryShape

if TYPE_CHECKING:
    from tenacity import AsyncRetrying
    from tenacity.stop import stop_base

# tenacity is imported when a call is first retried: importing it (and the optional
# integrations it probes for) is not paid by every import of the package.

__all__ = ["again", "may_replay", "replays"]

T = TypeVar("T")


def may_replay(exc: BaseException, shape: QueryShape, idempotent: bool) -> bool:
    """Whether the client may send the query of ``shape`` again after ``exc``."""
    if not isinstance(exc, e.StoreError) or not exc.retryable:
        return False
    if shape.read_only or idempotent:
        return True
    return isinstance(exc, e.ConflictError) and shape.atomic


def replays(
    *, shape: QueryShape, idempotent: bool, attempts: int, initial_s: float, max_s: float
) -> AsyncRetrying:
    """The client's loop for the attempts after the first."""
    from tenacity import (
        AsyncRetrying,
        retry_if_exception,
        stop_after_attempt,
        wait_random_exponential,
    )

    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: may_replay(exc, shape, idempotent)),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=initial_s, max=max_s),
        sleep=anyio.sleep,
        reraise=True,
    )


async def again(
    step: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    attempts: int | None = None,
    within_s: float | None = None,
    initial_s: float = 0.0,
    max_s: float = 0.5,
    exhausted: Callable[[BaseException], BaseException] | None = None,
) -> T:
    """Run ``step`` until it returns, retrying it after any of ``on``: at most ``attempts``
    times and/or for ``within_s`` seconds. When they run out, the last error is raised, or
    ``exhausted(last_error)`` if given. ``initial_s`` > 0 waits between attempts."""
    from tenacity import (
        AsyncRetrying,
        retry_if_exception_type,
        stop_after_attempt,
        stop_after_delay,
        wait_none,
        wait_random_exponential,
    )

    stop: stop_base = stop_after_attempt(attempts) if attempts is not None else stop_after_delay(0)
    if within_s is not None:
        stop = stop_after_delay(within_s) if attempts is None else stop | stop_after_delay(within_s)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(on),
        stop=stop,
        wait=wait_random_exponential(multiplier=initial_s, max=max_s) if initial_s else wait_none(),
        sleep=anyio.sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await step()
    except on as exc:
        if exhausted is None:
            raise
        raise exhausted(exc) from None
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
