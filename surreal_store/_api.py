"""The boundary of the public API: what a caller's wrong value becomes.

Domain functions check their arguments where a check says something useful (a key's shape, a
vector's length). A value of the wrong kind altogether (``None`` where a list belongs, a
number for a path) can still fail deeper, in Python, as a ``TypeError`` or ``ValueError``;
:func:`public` turns that into a :class:`ValidationError` naming the function, with the
original error kept as its cause, so no exception but a :class:`StoreError` leaves a public
call.

``@public(agents=False)`` marks a function agents may not call: the domains whose tables the
access layer (:mod:`._permissions`) closes to agents. The engine enforces that; the flag only
turns what it would answer (nothing found, or a stored function failing on a record it cannot
read) into a refusal that says why, before anything is sent. The wrapper carries the flag
(``closed_to_agents``), wherever its function's module lives.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from ._errors import (
    NotFoundError,
    NotVisibleError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)

__all__ = ["agent_refusal", "not_visible", "public"]

F = TypeVar("F", bound=Callable[..., Any])

# What Python raises for a value of the wrong kind or range. A StoreError is a ValueError too
# (ValidationError) and passes unchanged.
_MISUSE = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


def _refused(fn: Callable[..., Any], exc: BaseException) -> ValidationError:
    return ValidationError(f"{fn.__name__}: invalid argument: {exc}")


def _executor(first: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What a domain function runs on: its first argument, given by position or by name."""
    if args:
        return args[0]
    return kwargs.get(first) if first is not None else None


def _closed_to(fn: Callable[..., Any], db: Any) -> PermissionDeniedError | None:
    return agent_refusal(db, fn.__module__.rpartition(".")[2].lstrip("_"), fn.__name__)


def agent_refusal(db: Any, domain: str, name: str) -> PermissionDeniedError | None:
    """What an agent's call of ``domain.name``, a function closed to agents, raises when
    ``db`` signs in as an agent; ``None`` for any other sign-in."""
    signin = getattr(db, "signed_in_as", None)
    if getattr(signin, "kind", None) != "agent":
        return None
    return PermissionDeniedError(
        f"{domain}.{name}: an agent's sign-in reaches memories, decisions, runs and "
        f"provenance; {domain} is for users (an editor); nothing was sent"
    )


def _restricted(db: Any) -> bool:
    signin = getattr(db, "signed_in_as", None)
    return bool(getattr(signin, "restricted", False))


def not_visible(exc: NotFoundError) -> NotVisibleError:
    """``exc`` as a restricted session sees it: absent, or beyond its sign-in."""
    return NotVisibleError(f"{exc.message} (or not visible to this sign-in)", kind=exc.kind)


@overload
def public(fn: F, /) -> F: ...


@overload
def public(*, agents: bool = True) -> Callable[[F], F]: ...


def public(fn: F | None = None, /, *, agents: bool = True) -> F | Callable[[F], F]:
    """Wrap a public function so a misuse error leaves it as :class:`ValidationError`, and a
    record a restricted session cannot see as :class:`NotVisibleError`.

    ``agents=False``: an agent's sign-in is refused with :class:`PermissionDeniedError`
    before the function runs (the wrapper's ``closed_to_agents`` is then ``True``)."""
    if fn is None:
        return functools.partial(_wrap, agents=agents)
    return _wrap(fn, agents=agents)


def _wrap(fn: F, *, agents: bool) -> F:
    if not inspect.iscoroutinefunction(fn):
        if not agents:
            raise TypeError(f"{fn.__name__}: only a function that queries can be closed to agents")
        wrapper = _wrap_sync(fn)
    else:
        wrapper = _wrap_async(fn, agents)
    wrapper.closed_to_agents = not agents  # type: ignore[attr-defined]
    return wrapper


def _wrap_async(fn: F, agents: bool) -> F:
    first = next(iter(inspect.signature(fn).parameters), None)

    @functools.wraps(fn)
    async def guarded_async(*args: Any, **kwargs: Any) -> Any:
        if not agents:
            closed = _closed_to(fn, _executor(first, args, kwargs))
            if closed is not None:
                raise closed
        try:
            return await fn(*args, **kwargs)
        except NotFoundError as exc:
            if isinstance(exc, NotVisibleError) or not _restricted(_executor(first, args, kwargs)):
                raise
            raise not_visible(exc) from exc
        except StoreError:
            raise
        except _MISUSE as exc:
            raise _refused(fn, exc) from exc

    return cast(F, guarded_async)


def _wrap_sync(fn: F) -> F:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except _MISUSE as exc:
            raise _refused(fn, exc) from exc

    return cast(F, guarded)
