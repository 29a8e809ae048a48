"""Experiment runners, result files and plots.

The names below are imported on first use (PEP 562), so that
`tf_lowprec.experiments.cli` parses its arguments before TensorFlow and
matplotlib are imported.
"""

import importlib

# Imported eagerly (it needs neither TensorFlow nor matplotlib): importing the
# submodule `run_grid` would otherwise shadow the lazily exported function.
from tf_lowprec.experiments.run_grid import run_grid

_EXPORTS = {
    "plot_epoch_curves": "tf_lowprec.experiments.plots",
    "read_csv": "tf_lowprec.experiments.results_io",
    "write_csv_atomic": "tf_lowprec.experiments.results_io",
    "train_and_evaluate": "tf_lowprec.experiments.train_run",
}
__all__ = sorted([*_EXPORTS, "run_grid"])


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
