"""Means and spreads over seeds: table cells and mean ± sd bands per epoch.

The studies in examples/ repeat every configuration with several seeds and
report `mean ± sd` (the sample standard deviation, `ddof=1`, over seeds);
these helpers format those cells and draw the per-epoch curves.
"""

import math

import numpy as np


def _finite(values, scale):
    out = []
    for value in values:
        if value in ("", None):
            continue
        value = scale * float(value)
        if math.isfinite(value):
            out.append(value)
    return out


def mean_sd(values, scale=1.0, digits=2):
    """`"m ± s"` of `values` (strings or numbers, times `scale`); one value: just it; none: `""`."""
    values = _finite(values, scale)
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def by_epoch(rows, column, scale=1.0):
    """`(epochs, means, sds)` of `column` over `rows` grouped by their `epoch` (empty cells skipped)."""
    groups = {}
    for row in rows:
        values = _finite([row.get(column, "")], scale)
        if values:
            groups.setdefault(int(row["epoch"]), []).extend(values)
    epochs = sorted(groups)
    means = np.array([np.mean(groups[e]) for e in epochs])
    sds = np.array([np.std(groups[e], ddof=1) if len(groups[e]) > 1 else 0.0 for e in epochs])
    return epochs, means, sds


def plot_band(axis, rows, column, label, scale=1.0, style="-", alpha=0.2):
    """Plots the per-epoch mean of `column` with a ± sd band; returns the line (None if no data)."""
    epochs, means, sds = by_epoch(rows, column, scale)
    if not epochs:
        return None
    line, = axis.plot(epochs, means, style, label=label)
    axis.fill_between(epochs, means - sds, means + sds, color=line.get_color(), alpha=alpha)
    return line
