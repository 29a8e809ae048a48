"""Table and plots of a pruning comparison, from the CSVs in its results folder.

    python benchmarks/pruning_report.py --out benchmarks/results/pruning

Reads `pruning_comparison.csv` (accuracy runs, `pruning_comparison.py`),
`timing.csv` and `inference.csv` (`pruning_timing.py`, optional) and
`settings.csv`; writes `summary.md`, `accuracy_vs_sparsity.png` and
`layer_sparsity.png`.
"""

import argparse
import math
import os
import sys

import numpy as np
from pruning_common import LAYERS, final_rows, method_of, number, read_settings

from tf_lowprec.experiments.results_io import read_csv, save_figure_atomic

HERE = os.path.dirname(os.path.abspath(__file__))


def summary_table(rows, timing=(), inference=()):
    final = final_rows(rows)
    seconds = {}
    for row in rows:
        seconds.setdefault(row["run"], []).append(number(row, "seconds"))
    median = {name: float(np.median(v)) for name, v in seconds.items()}
    step = {row["method"]: row for row in timing}
    speedup = {row["run"]: number(row, "speedup") for row in inference}
    sgd = final["SGD"]
    sgd_acc = number(sgd, "test_accuracy")

    def fmt(v, spec, suffix=""):
        return "–" if math.isnan(v) else format(v, spec) + suffix

    lines = [
        ("| run | kernel sparsity | test accuracy | Δ vs SGD (pt) | s/epoch (full run) | "
        "step time vs SGD | MACs vs dense | inference speedup | .keras gzip (KB) | "
        "TFLite sparse (KB) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in final.items():
        acc = number(row, "removed_model_test_accuracy", number(row, "test_accuracy"))
        method = method_of(name)
        key = {"SGD": "SGD", "GRDA": "GRDA", "magnitude": "magnitude",
               "structured": "structured", "TFMOT": "TFMOT"}.get(method)
        if name.startswith("TFMOT SGD"):
            key = "tf_keras SGD"
        ratio = number(step.get(key, {}), "ratio")
        ratio_text = fmt(ratio, ".2f", "×")
        if key == "TFMOT" and not math.isnan(ratio):
            ratio_text += " (vs tf_keras SGD)"
        macs = number(row, "macs") / number(sgd, "macs") if "macs" in row else float("nan")
        infer = speedup.get(name, 1.0 if method in ("SGD", "GRDA", "magnitude") else float("nan"))
        lines.append(
            f"| {name} | {number(row, 'kernel_sparsity'):.1%} | {acc:.2%} | "
            f"{100 * (acc - sgd_acc):+.2f} | {median[name]:.1f} | {ratio_text} | "
            f"{fmt(macs, '.2f')} | {fmt(infer, '.2f', '×')} | "
            f"{fmt(number(row, 'size/keras_gzip') / 1024, '.0f')} | "
            f"{fmt(number(row, 'size/tflite_sparse') / 1024, '.0f')} |"
        )
    return "\n".join(lines)


def plot_accuracy_vs_sparsity(rows, path, title):
    import matplotlib.pyplot as plt

    final = final_rows(rows)
    styles = {"GRDA": ("o-", {}, "GRDA (mu sweep, no retraining)"),
              "magnitude": ("s-", {}, "tf_lowprec magnitude pruning"),
              "TFMOT": ("^--", {"markersize": 11, "markerfacecolor": "none"},
                        "TFMOT prune_low_magnitude (tf_keras)"),
              "structured": ("D-", {}, "tf_lowprec filter pruning (filters removed)")}
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, (style, extra, label) in styles.items():
        points = sorted(
            (number(row, "kernel_sparsity"),
             number(row, "removed_model_test_accuracy", number(row, "test_accuracy")), name)
            for name, row in final.items()
            if method_of(name) == method and number(row, "kernel_sparsity") > 0)
        if points:
            axis.plot([100 * p[0] for p in points], [100 * p[1] for p in points], style,
                      label=label, **extra)
    if "SGD" in final:
        axis.axhline(100 * number(final["SGD"], "test_accuracy"), color="gray", ls=":",
                     label="SGD, dense")
    axis.set_xlabel("kernel sparsity (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_layer_sparsity(rows, path, target=0.9):
    """Per-layer kernel sparsity of each method's run closest to `target` overall."""
    import matplotlib.pyplot as plt

    final = final_rows(rows)
    chosen = {}
    for name, row in final.items():
        method = method_of(name)
        if method in ("SGD",) or name.startswith("TFMOT SGD"):
            continue
        gap = abs(number(row, "kernel_sparsity") - target)
        if method not in chosen or gap < chosen[method][0]:
            chosen[method] = (gap, name)
    names = [name for _, name in chosen.values()]
    figure, axis = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [100 * number(final[name], f"sparsity/{layer}", 0.0) for layer in LAYERS]
        axis.bar(np.arange(len(LAYERS)) + i * width, values, width,
                 label=f"{name} ({number(final[name], 'kernel_sparsity'):.1%} overall)")
    axis.set_xticks(np.arange(len(LAYERS)) + 0.4 - width / 2)
    axis.set_xticklabels(LAYERS)
    axis.set_ylabel("kernel sparsity (%)")
    axis.set_ylim(0, 105)
    axis.set_title(f"layer-wise sparsity, runs nearest {target:.0%} overall")
    axis.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def report(out):
    """Writes summary.md and the two plots of the comparison in `out`; returns the table."""
    settings = read_settings(out)
    import matplotlib

    matplotlib.use("Agg")
    rows = read_csv(os.path.join(out, "pruning_comparison.csv"))
    timing_path, inference_path = (os.path.join(out, n) for n in ("timing.csv", "inference.csv"))
    timing = read_csv(timing_path) if os.path.exists(timing_path) else []
    inference = read_csv(inference_path) if os.path.exists(inference_path) else []
    subset = f" on {settings.limit} examples" if settings.limit else ""
    momentum = f", momentum {settings.momentum}" if settings.momentum else ""
    title = (f"{settings.dataset} CNN, {settings.epochs} epochs{subset}, "
             f"SGD lr={settings.learning_rate}{momentum}")
    plot_accuracy_vs_sparsity(rows, os.path.join(out, "accuracy_vs_sparsity.png"), title)
    plot_layer_sparsity(rows, os.path.join(out, "layer_sparsity.png"))
    table = summary_table(rows, timing, inference)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(f"{title}; pruning schedule PolynomialDecay(0 -> s, power 3) over the first "
                f"{settings.prune_until:.0%} of {settings.steps} steps, masks every "
                f"{settings.frequency} steps.\n\n")
        f.write(table + "\n")
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pruning"))
    args = parser.parse_args(argv)
    print(report(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
