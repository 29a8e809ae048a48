"""Matplotlib (Agg) figures of per-epoch results tables."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tf_lowprec.experiments.results_io import save_figure_atomic  # noqa: E402

_LABELS = {
    "train_loss": "training loss",
    "train_accuracy": "training accuracy",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "sparsity": "sparsity (fraction of exact zeros)",
    "seconds": "seconds per epoch",
}


def plot_epoch_curves(
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str],
    path: str | os.PathLike[str],
    group_key: str = "optimizer",
    title: str | None = None,
) -> str | os.PathLike[str]:
    """One panel per metric, one line per group, x = epoch; saved as PNG.

    Args:
        rows: Dicts with `epoch`, `group_key` and the metric columns (values
            may be strings, as read back from CSV).
        metrics: Column names to plot, one panel each.
        path: Output PNG path (written atomically).
        group_key: Column that names a line. Defaults to `"optimizer"`.
        title: Figure title. Defaults to none.

    Returns:
        `path`.
    """
    groups = {}
    for row in rows:
        groups.setdefault(str(row[group_key]), []).append(row)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for axis, metric in zip(axes, metrics):
        for name, group in groups.items():
            group = sorted(group, key=lambda r: int(r["epoch"]))
            axis.plot(
                [int(r["epoch"]) for r in group],
                [float(r[metric]) for r in group],
                marker="o",
                label=name,
            )
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(_LABELS.get(metric, metric))
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
    return path
