"""docs/results.md is generated from the benchmarks' JSON files and kept current."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_results_at_a_glance_are_what_the_json_files_give():
    spec = importlib.util.spec_from_file_location("results", ROOT / "benchmarks" / "results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    assert (ROOT / "docs" / "results.md").read_text() == results.page(), "run python benchmarks/results.py"
    assert "| diffusion |" in results.page() and "floor" in results.page()
