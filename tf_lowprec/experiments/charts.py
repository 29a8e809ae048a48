"""Small figures for interactive use (tutorials, notebooks).

Unlike `tf_lowprec.experiments.plots`, which writes PNG files and selects
matplotlib's file-only Agg backend, this module leaves the backend alone, so
its figures show inline in a notebook or in a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def accuracy_bars(results: Mapping[str, float], xlabel: str = "test accuracy") -> Any:
    """Horizontal bars of `{name: accuracy}`, from just below the lowest value to 1.

    Args:
        results: Accuracies in [0, 1] by name, drawn top to bottom in order.
        xlabel: Label of the accuracy axis. Defaults to `"test accuracy"`.

    Returns:
        The matplotlib `Axes` (call `plt.show()` to display it).
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 2.5))
    axes.barh(list(results), list(results.values()))
    axes.set_xlim(min(results.values()) - 0.05, 1)
    axes.set_xlabel(xlabel)
    figure.tight_layout()
    return axes
