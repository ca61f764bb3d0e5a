"""The example notebook runs top to bottom in a real kernel, so it cannot rot; and the pictures
it draws (provenance and the knowledge graph) read well: a legend, boxes apart, labels whole
and inside their boxes, few crossings, rendered to PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pictures import check_readable, crossings, render_png

NOTEBOOK = Path(__file__).parent.parent / "examples" / "provenance.ipynb"


def test_example_notebook_runs_and_draws_a_lineage_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DEMO_URL", f"surrealkv://{tmp_path / 'demo'}")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any(h.startswith("<svg") and "run_event" in h for h in html)
    # The pictures: the lineage, the why (a decision, 20-odd memories, red ones among them),
    # and the why collapsed.
    pictures = {
        cell.source.strip().splitlines()[-1]: o["data"]["text/html"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("data", {}).get("text/html", "").startswith("<svg")
    }
    assert set(pictures) == {"graph", "why", "why.collapse(hidden=True)", "sub"}, set(pictures)
    for name, svg in pictures.items():
        check_readable(svg)
        assert crossings(svg) <= 2, name
        render_png(svg, name.replace("(", "_").replace(")", "").replace("=", ""), tmp_path)
    why = pictures["why"]
    assert "hidden by an invalidation" in why and "used (decision to memory)" in why
    assert "hidden memories" in pictures["why.collapse(hidden=True)"]
    assert pictures["why.collapse(hidden=True)"].count("<g ") < why.count("<g ")
    # The knowledge graph around Japan: its cities, then what they offer; run 3's facts hidden.
    kg = pictures["sub"]
    assert 'data-id="Japan" data-column="0"' in kg and "located_in" in kg and "offers" in kg
    printed = "".join(
        "".join(o.get("text", "")) for cell in nb.cells if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )  # fmt: skip
    assert "'hidden')" in printed and "'shown')" in printed
