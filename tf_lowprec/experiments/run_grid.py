"""Run a set of named training runs into one CSV, resumably."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from tqdm.auto import tqdm

from tf_lowprec.experiments.results_io import read_csv, write_csv_atomic


def run_grid(
    runs: Mapping[str, Callable[[], list[dict[str, Any]]]],
    csv_path: str | os.PathLike[str],
    key: str = "run",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Executes named runs, appending their rows to `csv_path` as each finishes.

    Each run's rows are added only once the run has finished, and the CSV is
    rewritten atomically, so an interrupted grid loses at most the run in
    progress and never leaves a half-written file. Started again with the
    same `csv_path`, it skips every run that already has rows there.

    Args:
        runs: Dict `{name: callable}`; each callable takes no arguments and
            returns a list of row dicts (e.g. one per epoch).
        csv_path: The results CSV (created if absent).
        key: Column that stores the run name. Defaults to `"run"`.
        progress: Show a progress bar over runs. Defaults to `True`.

    Returns:
        All rows of the CSV after the grid: rows loaded from an earlier
        invocation (values as strings) followed by the new ones.
    """
    rows = read_csv(csv_path) if os.path.exists(csv_path) else []
    done = {row[key] for row in rows}
    todo = [name for name in runs if name not in done]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run",
               disable=not progress, dynamic_ncols=True)
    with bar:
        for name in todo:
            bar.set_description(name)
            rows += [{key: name, **row} for row in runs[name]()]
            write_csv_atomic(csv_path, rows)
            bar.update(1)
    return rows
