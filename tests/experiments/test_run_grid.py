"""run_grid: resumable, loses no rows, skips finished runs."""

import pytest

from tf_lowprec.experiments.results_io import read_csv
from tf_lowprec.experiments.run_grid import run_grid


def test_runs_all_and_resumes_after_interruption(tmp_path):
    path = tmp_path / "grid.csv"
    calls = []

    def make(name, fail=False):
        def run():
            calls.append(name)
            if fail:
                raise KeyboardInterrupt
            return [{"epoch": 1, "v": name}, {"epoch": 2, "v": name}]
        return run

    with pytest.raises(KeyboardInterrupt):
        run_grid({"a": make("a"), "b": make("b", fail=True), "c": make("c")}, path, progress=False)
    assert [r["run"] for r in read_csv(path)] == ["a", "a"]  # a kept, nothing of b

    calls.clear()
    rows = run_grid({"a": make("a"), "b": make("b"), "c": make("c")}, path, progress=False)
    assert calls == ["b", "c"]  # a skipped
    assert [r["run"] for r in rows] == ["a", "a", "b", "b", "c", "c"]
    assert read_csv(path) == [{k: str(v) for k, v in r.items()} for r in rows]
