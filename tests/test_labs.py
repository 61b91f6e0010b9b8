"""The labs (labs/*.py, jupytext's percent format) run top to bottom in a Jupyter kernel, in their quick mode."""

import os
from pathlib import Path

import pytest

LABS = sorted((Path(__file__).parents[1] / "labs").glob("[0-9][0-9]_*.py"))


def test_there_are_three_labs_each_with_a_turn_and_a_folded_solution():
    jupytext = pytest.importorskip("jupytext")
    assert [p.stem[:2] for p in LABS] == ["01", "02", "03"]
    for path in LABS:
        cells = jupytext.read(path).cells
        turns = [c for c in cells if c.cell_type == "markdown" and "Your turn:" in c.source]
        solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
        assert turns and len(solutions) >= len(turns), path.name
        assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions), path.name
        assert not any(c.get("outputs") for c in cells)  # kept without outputs


@pytest.mark.slow
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_the_lab_runs_in_its_quick_mode(path, tmp_path, monkeypatch):
    """Every cell runs (the solution cells assert against closed forms and unnoise's own functions)."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("UNNOISE_LAB_QUICK", "1")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    monkeypatch.setenv("OMP_NUM_THREADS", str(max(1, 2 // workers)))
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    printed = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "the solution" in printed and "not written yet" in printed  # the turns are left to the learner
