"""The demo: build a realistic agent history once, then tour it."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from .. import commits, memory
from ._app import Options, app, embedder_for, program, run_async, store_options
from ._lazy import provenance
from ._render import out, print_graph, print_json, print_rows, with_progress


@app.command()
@store_options
def demo(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no tour.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="What was built, as JSON (no progress, no tour).")
    ] = False,
) -> None:
    """Build a realistic agent history in the store (once), then tour it: the log, a recall,
    a memory's lineage, why a decision was taken, and what distrusting a run hid."""
    from .._demo import seed

    opts: Options = ctx.obj

    async def go() -> None:
        async with opts.store(migrate=True, check=True) as s:
            result = await with_progress(
                quiet or as_json, "building", lambda p: seed(s, progress=p)
            )
            if as_json:
                print_json(dataclasses.asdict(result))
            if quiet or as_json:
                return
            verb = "built" if result.created else "found (already built)"
            out.print(
                f"[bold]demo history {verb}[/]: {result.memories} memories, "
                f"{len(result.decisions)} decisions, {len(result.invalidated)} invalidated\n"
            )
            out.rule("commit log (main)")
            history = await commits.log(s, branch="main")
            rows = [[c.id[:12], str(c.generation), c.branch or "", c.message] for c in history]
            print_rows(["commit", "gen", "branch", "message"], rows, text="message")
            out.rule("recall: 'train to Porto in May' (hybrid)")
            embedder = embedder_for(await memory.get_space(s))
            hits = await memory.recall(s, text="train to Porto in May", embedder=embedder, k=5)
            rows = [
                [f"{h.score:.4f}", "" if h.vector_score is None else f"{h.vector_score:.3f}",
                 "" if h.text_score is None else f"{h.text_score:.2f}", h.memory.content]
                for h in hits
            ]  # fmt: skip
            print_rows(["score", "vector", "text", "content"], rows, text="content")
            out.rule("lineage of a summary")
            print_graph(
                await provenance.lineage(s, memory=result.summary), f"memory:{result.summary}"
            )
            if result.decisions:
                out.rule("why was this decided?")
                d = result.decisions[0]
                out.print(f"(two levels shown; `{program()} why {d[:12]}` shows all)",
                          highlight=False)  # fmt: skip
                print_graph(await provenance.why(s, decision=d), f"decision:{d}", depth=1)
            out.rule("what distrusting run 3 hid")
            out.print(
                f"{len(result.invalidated)} memories derived from run 3's tool calls are "
                "invalidated; recall leaves them out unless asked:"
            )
            every = result.memories
            before = await memory.recall(
                s, text="hotel", mode="fulltext", k=every, include_invalidated=True
            )
            after = await memory.recall(s, text="hotel", mode="fulltext", k=every)
            out.print(
                f"  memories about 'hotel': {len(before)} in the store, {len(after)} recalled",
                highlight=False,
            )
            if result.entities:
                out.print(
                    f"  knowledge graph: {result.facts} facts, {result.hidden_facts} of them "
                    "found only by run 3 and hidden",
                    highlight=False,
                )
            prog = program()
            tries = [
                f"{prog} recall 'Kyoto hotel'",
                f"{prog} lineage {result.summary[:12]}",
                *([f"{prog} why {result.decisions[0][:12]}"] if result.decisions else []),
                f"{prog} impact demo-run-3:4",
                *([f"{prog} entity Kyoto"] if result.entities else []),
                f"{prog} --help",
            ]
            out.print("\nTry:", highlight=False)
            for line in tries:
                out.print(f"  {line}", highlight=False, soft_wrap=True)  # one line, to copy

    run_async(go)
