"""Figures of a sweep: running-mean loss curves, accuracy curves, heatmap."""

import math
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tf_lowprec.experiments.results_io import save_figure_atomic  # noqa: E402


def running_mean(values, window):
    """Mean of the last `window` values at each position (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (sums[index] - sums[start]) / (index - start)


def _runs_at(rows, optimizer, loss, lr):
    """{run name: its rows in epoch order} for one (optimizer, loss, lr)."""
    runs = {}
    for row in rows:
        if (row["optimizer"], row["loss"]) == (optimizer, loss) and float(row["learning_rate"]) == lr:
            runs.setdefault(row["run"], []).append(row)
    return runs


def plot_sweep_curves(rows, best, out, title="", window=10, every=1):
    """`loss_curves.png` and `accuracy_curves.png` at each best learning rate.

    Args:
        rows: Sweep rows (from `results.csv` or `sweep`).
        best: `{(optimizer, loss): best learning rate}`; NaN entries (all
            diverged) are skipped.
        out: Output directory.
        title: Figure title prefix.
        window: Running-mean window, in logged blocks.
        every: Steps per logged block (the x axis is in training steps).
    """
    losses = list(dict.fromkeys(loss for _, loss in best))
    fig_loss, loss_axes = plt.subplots(1, len(losses), figsize=(6 * len(losses), 4), squeeze=False)
    fig_acc, acc_axes = plt.subplots(1, len(losses), figsize=(6 * len(losses), 4), squeeze=False)
    for loss, loss_axis, acc_axis in zip(losses, loss_axes[0], acc_axes[0]):
        for (optimizer, loss_name), lr in best.items():
            if loss_name != loss or math.isnan(lr):
                continue
            runs = _runs_at(rows, optimizer, loss, lr)
            blocks = [[float(b) for r in rs for b in str(r.get("train_loss_blocks", "")).split()]
                      for rs in runs.values()]
            length = min(len(b) for b in blocks)
            if length:
                mean_blocks = np.mean([b[:length] for b in blocks], axis=0)
                steps = every * np.arange(1, length + 1)
                loss_axis.plot(steps, running_mean(mean_blocks, window), label=f"{optimizer} (lr={lr:g})")
            epochs = sorted({int(r["epoch"]) for rs in runs.values() for r in rs})
            accs = [np.mean([float(r["test_accuracy"]) for rs in runs.values() for r in rs
                             if int(r["epoch"]) == e]) for e in epochs]
            acc_axis.plot(epochs, accs, marker="o", label=f"{optimizer} (lr={lr:g})")
        loss_axis.set_title(f"{title}: {loss}")
        loss_axis.set_xlabel("training step")
        loss_axis.set_ylabel(f"training loss, running mean over {window * every} steps")
        loss_axis.set_yscale("log")
        acc_axis.set_title(f"{title}: {loss}")
        acc_axis.set_xlabel("epoch")
        acc_axis.set_ylabel("test accuracy")
        for axis in (loss_axis, acc_axis):
            axis.grid(alpha=0.3)
            axis.legend(fontsize="x-small")
    for figure, name in ((fig_loss, "loss_curves.png"), (fig_acc, "accuracy_curves.png")):
        figure.tight_layout()
        save_figure_atomic(figure, os.path.join(out, name))
        plt.close(figure)


def plot_heatmap(rows, path, title=""):
    """Final test accuracy (mean over seeds), optimizer x learning rate, per loss.

    Cells where a run diverged are marked "div", never coloured as a score.
    """
    final = {}
    for row in rows:
        final[row["run"]] = row
    losses = list(dict.fromkeys(r["loss"] for r in final.values()))
    optimizers = list(dict.fromkeys(r["optimizer"] for r in final.values()))
    lrs = sorted({float(r["learning_rate"]) for r in final.values()}, reverse=True)
    figure, axes = plt.subplots(1, len(losses), figsize=(1.1 * len(lrs) + 3, 0.45 * len(optimizers) + 1.8) if len(losses) == 1
                                else (5 * len(losses), 0.45 * len(optimizers) + 1.8), squeeze=False)
    for loss, axis in zip(losses, axes[0]):
        grid = np.full((len(optimizers), len(lrs)), np.nan)
        diverged = np.zeros_like(grid, dtype=bool)
        for i, optimizer in enumerate(optimizers):
            for j, lr in enumerate(lrs):
                cell = [r for r in final.values()
                        if (r["optimizer"], r["loss"]) == (optimizer, loss) and float(r["learning_rate"]) == lr]
                if any(str(r["diverged"]) == "True" for r in cell):
                    diverged[i, j] = True
                elif cell:
                    grid[i, j] = np.mean([float(r["test_accuracy"]) for r in cell])
        image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i in range(len(optimizers)):
            for j in range(len(lrs)):
                text = "div" if diverged[i, j] else ("" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}")
                axis.text(j, i, text, ha="center", va="center", fontsize=7,
                          color="white" if diverged[i, j] or grid[i, j] < 0.6 else "black")
        axis.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
        axis.set_yticks(range(len(optimizers)), optimizers)
        axis.set_xlabel("learning rate")
        axis.set_title(f"{title}\n{loss}" if title else loss, fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.04)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
