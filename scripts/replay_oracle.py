"""Compare the graph's trust rules with a replay of the trusted assertions (docs/graph.md,
"Open cases").

The rules are those of the pure-Python model in tests/test_graph_temporal.py, which the state
machine there holds the store to. For random sequences of assertions (single- and multi-valued
predicates, from sources 0 and 1), distrusts and restores, the model's current view at every
valid time is compared with a replay: a fresh model given, in the order they became effective,
only the assertions none of whose sources is distrusted now (an assertion becomes effective
when it is made, or again when a restore trusts its sources once more). Prints the counts and
the first differences.

    .venv/bin/python scripts/replay_oracle.py [EXAMPLES] [--open] [--no-restore]

``--open`` lets valid times be open-ended (the default bounds them); ``--no-restore`` leaves
restores out.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_graph_temporal as t

OPEN = "--open" in sys.argv
EXAMPLES = int(next((a for a in sys.argv[1:] if a.isdigit()), "3000"))
SPAN = st.one_of(st.none(), st.integers(1, 4)) if OPEN else st.integers(1, 4)
ASSERT = st.tuples(
    st.just("assert"),
    st.just("A"),
    st.sampled_from(t.PREDICATES),
    st.sampled_from(t.ENTITIES),
    st.sampled_from(t.VALUES),
    st.sampled_from(t.YEARS),
    SPAN,
    st.frozensets(st.integers(0, 1), max_size=2),
)
TRUST = st.tuples(
    st.sampled_from(("distrust",) if "--no-restore" in sys.argv else ("distrust", "restore")),
    st.integers(0, 1),
)


def view(m: t.Model) -> list[list[tuple[Any, ...]]]:
    return [m.visible(v, None) for v in range(-1, 14)]


def replay(log: list[list[Any]], distrusted: set[int]) -> list[list[tuple[Any, ...]]]:
    m = t.Model()
    for n, (_, (_, s, p, o, v, vf, span, src)) in enumerate(sorted(log, key=lambda e: e[0])):
        if not src & distrusted:
            m.assert_fact(s, p, o, v, vf, None if span is None else vf + span, n + 1, set(), 0)
    return view(m)


def run(steps: list[tuple[Any, ...]]) -> bool:
    m, log = t.Model(), []
    for step, op in enumerate(steps, 1):
        if op[0] == "assert":
            _, s, p, o, v, vf, span, src = op
            m.assert_fact(s, p, o, v, vf, None if span is None else vf + span, step, set(src), 0)
            log.append([float(step), op])
        elif op[0] == "distrust" and op[1] not in m.distrusted:
            m.distrust(op[1], step)
        elif op[0] == "restore" and op[1] in m.distrusted:
            m.restore(op[1], step)
            for entry in log:  # effective again now, in the order they were made
                src = entry[1][7]
                if op[1] in src and not src & m.distrusted:
                    entry[0] = step + entry[0] / 1000
    return view(m) == replay(log, m.distrusted)


counts: collections.Counter[str] = collections.Counter()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(st.lists(st.one_of(ASSERT, TRUST), max_size=8))
def compare(steps: list[tuple[Any, ...]]) -> None:
    same = run(steps)
    counts["same" if same else "different"] += 1
    if not same and counts["different"] <= 3:
        print("different:", steps)


if __name__ == "__main__":
    compare()
    print(dict(counts))
