"""The benchmark registry, timing helpers and figure reporting."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["REGISTRY", "Bench", "Figure", "Scale", "interleaved", "p50", "register"]


@dataclass(frozen=True)
class Scale:
    """How big a run is: ``quick`` is a smoke run (well under a minute per benchmark)."""

    quick: bool
    only: frozenset[str] = frozenset()
    """The parts of a benchmark to run (``--only``; empty: all). A benchmark that has parts
    names them in its docstring; one that has none runs whole."""

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    def wants(self, part: str) -> bool:
        """Whether ``part`` of a benchmark is to run."""
        return not self.only or part in self.only


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str = ""
    target: tuple[Literal["<=", ">="], float] | None = None
    """The issue's target, if this is a headline figure."""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        op, bound = self.target
        ok = self.value <= bound if op == "<=" else self.value >= bound
        return f"{'PASS' if ok else 'FAIL'} ({op} {bound:g})"


@dataclass
class Bench:
    name: str
    doc: str
    run: Callable[[Scale], Awaitable[list[Figure]]]
    figures: list[Figure] = field(default_factory=list)
    default: bool = True
    """Run when no benchmark is named (long ones are run by name only)."""


REGISTRY: dict[str, Bench] = {}


def register(
    name: str, *, default: bool = True
) -> Callable[[Callable[[Scale], Awaitable[list[Figure]]]], Bench]:
    def wrap(fn: Callable[[Scale], Awaitable[list[Figure]]]) -> Bench:
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        bench = Bench(name=name, doc=doc, run=fn, default=default)
        REGISTRY[name] = bench
        return bench

    return wrap


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


async def interleaved(
    a: Callable[[], Awaitable[object]],
    b: Callable[[], Awaitable[object]],
    *,
    rounds: int,
    calls: int,
    warmup: int = 20,
) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``a`` and ``b``, alternating blocks of ``calls`` so that drift in the
    machine's speed hits both alike. Returns one mean-per-call sample per block."""
    for _ in range(warmup):
        await a()
        await b()
    sa: list[float] = []
    sb: list[float] = []
    gc.collect()
    for r in range(rounds):
        order = (a, sa), (b, sb)
        for fn, out in order if r % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            for _ in range(calls):
                await fn()
            out.append((time.perf_counter() - t0) / calls)
    return sa, sb
