"""Accuracy vs sparsity: GRDA, tf_lowprec magnitude pruning, TFMOT and filter pruning.

    nice -n 10 python benchmarks/pruning_comparison.py             # ~25 min, 2 CPU cores
    python benchmarks/pruning_comparison.py --epochs 1 --limit 2000 --sparsities 0.9 \
        --grda-mus 0.7 --out /tmp/pc                                # smoke run, ~2 min

On the Fashion-MNIST CNN (`tf_lowprec.models.cnn`), every run starts from the
same initial weights and sees the same batches in the same order
(`tfmot_shared_data.fixed_order_train`: one seeded permutation, the same
every epoch, so Keras 3 and tf_keras get identical data), batch size, plain
SGD learning rate and number of epochs:

* `SGD`: no pruning (the accuracy and time reference);
* `GRDA mu=...`: gRDA, sparsity from training alone, no retraining;
* `magnitude s=...`: `tf_lowprec.pruning.prune_low_magnitude`, PolynomialDecay
  from 0 to `s` over the first `--prune-until` of training, masks every
  `--frequency` steps, then fine-tuning with the final mask;
* `TFMOT s=...`: `tfmot.sparsity.keras.prune_low_magnitude` with the same
  schedule on the same architecture rebuilt in tf_keras, started from the
  same initial weights, run by `benchmarks/tfmot_prune.py` in a separate
  interpreter (`--tfmot-python`, which must have the `[tfmot]` extra);
  `TFMOT SGD (tf_keras)` is tf_keras' own unpruned time reference;
* `structured s=...`: `prune_filters` (L1 norm, same schedule on the fraction
  of units), with the fraction chosen so that physically removing the
  filters (`remove_pruned_filters`) removes a fraction `s` of the kernel
  weights; accuracy, MACs and inference time are those of the smaller model.

Sparsity is measured on kernels (Conv/Dense weights, biases excluded), the
set TFMOT prunes. Results go to `--out` (default benchmarks/results/pruning):
`pruning_comparison.csv` (one row per run per epoch, written after each run;
an interrupted comparison resumes and skips finished runs),
`timing.csv` (seconds per training step of each method, interleaved rounds:
the time ratio vs SGD), `inference.csv` (the structured runs' smaller models
vs the dense CNN, interleaved), `accuracy_vs_sparsity.png`,
`layer_sparsity.png` and `summary.md`.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402

from tf_lowprec import data, models, pruning  # noqa: E402
from tf_lowprec.experiments.results_io import (  # noqa: E402
    read_csv,
    save_figure_atomic,
    write_csv_atomic,
)
from tf_lowprec.experiments.run_grid import run_grid  # noqa: E402
from tf_lowprec.experiments.train_run import train_and_evaluate  # noqa: E402
from tf_lowprec.optimizers.grda import GRDA  # noqa: E402
from tfmot_shared_data import fixed_order_train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = ("conv_1", "conv_2", "dense", "logits")


def _build(meta):
    return models.cnn(meta.input_shape, meta.num_classes)


def _kernel_sizes(model):
    sizes = {}
    for layer in model.layers:
        kernels = [w for w in layer.weights if len(w.shape) >= 2]
        if kernels:
            sizes[layer.name] = sum(math.prod(w.shape) for w in kernels)
    return sizes


def _test_arrays(dataset):
    xs = [x for x, _ in dataset.as_numpy_iterator()]
    return np.concatenate(xs)


def _final_stats(model, row, test_x, dense_reference, export_dir=None, removed=False):
    """Adds kernel sparsity, per-layer sparsity, MACs, sizes and inference time.

    With `removed=True` (a model whose pruned filters were physically removed)
    sparsity is the fraction of the dense model's kernel weights that are gone.
    """
    if removed:
        sizes = _kernel_sizes(model)
        row["kernel_sparsity"] = 1 - sum(sizes.values()) / sum(dense_reference.values())
        for name, total in dense_reference.items():
            row[f"sparsity/{name}"] = 1 - sizes.get(name, 0) / total
    else:
        report = pruning.sparsity(model, kernels_only=True)
        row["kernel_sparsity"] = report.sparsity
        for name, layer in report.layers.items():
            row[f"sparsity/{name.rsplit('/', 1)[-1]}"] = layer.sparsity
    row["params"] = model.count_params()
    row["macs"] = pruning.count_flops(model).macs
    if export_dir is not None:
        sizes = pruning.export_sizes(model, export_dir)
        row.update({f"size/{k}": v for k, v in sizes.as_dict().items()})
    row["dense_kernels"] = sum(dense_reference.values())


def _schedule(args, steps, final):
    end = max(1, int(round(args.prune_until * steps)))
    return pruning.PolynomialDecay(0.0, final, begin_step=0, end_step=end, power=3,
                                   frequency=args.frequency)


def _filter_fraction(meta, target):
    """Fraction of units per layer whose removal removes `target` of the kernels."""
    model = pruning.prune_filters(_build(meta), pruning.ConstantSparsity(0.5))
    before = sum(_kernel_sizes(pruning.strip_pruning(model)).values())
    leaders = [layer for layer in model.layers
               if isinstance(layer, pruning.PruneFilters) and layer.follow is None]

    def removed(fraction):
        for layer in leaders:
            n = int(layer.unit_mask.shape[0])
            mask = np.zeros(n, np.float32)
            mask[: pruning.keep_count(n, fraction)] = 1
            layer.unit_mask.assign(mask)
        small = pruning.remove_pruned_filters(model).model
        return 1 - sum(_kernel_sizes(small).values()) / before

    low, high = 0.0, 0.99
    for _ in range(14):
        mid = (low + high) / 2
        low, high = (mid, high) if removed(mid) < target else (low, mid)
    best = min((low, high), key=lambda f: abs(removed(f) - target))
    return best, removed(best)


def make_runs(args, meta, init_path, test_x, steps):
    dense_sizes = _kernel_sizes(_build(meta))
    lr = args.learning_rate

    def sgd():
        return keras.optimizers.SGD(lr, momentum=args.momentum)

    exports = args.keep_exports or tempfile.mkdtemp(prefix="pruning_exports_")

    def load():
        train, _ = fixed_order_train(args.dataset, args.batch_size, args.seed, args.limit)
        return train, data.load(args.dataset, "test", 1000)

    def keras_run(name, build_model, make_optimizer, callbacks=(), finish=None, removed=False):
        def run():
            train, test = load()
            model, rows = train_and_evaluate(build_model, make_optimizer(), train, test,
                                             epochs=args.epochs, seed=args.seed,
                                             callbacks=list(callbacks), verbose=2)
            row = rows[-1]
            if finish is not None:
                model = finish(model, row)
            _final_stats(model, row, test_x, dense_sizes,
                         os.path.join(exports, name.replace(" ", "_").replace("=", "")),
                         removed=removed)
            return rows

        return run

    runs = {"SGD": keras_run("SGD", lambda: _build(meta), sgd)}
    for mu in args.grda_mus:
        runs[f"GRDA mu={mu}"] = keras_run(
            f"GRDA mu={mu}", lambda: _build(meta),
            lambda mu=mu: GRDA(lr, c=args.grda_c, mu=mu))

    def strip(model, row):
        return pruning.strip_pruning(model)

    for s in args.sparsities:
        runs[f"magnitude s={s}"] = keras_run(
            f"magnitude s={s}",
            lambda s=s: pruning.prune_low_magnitude(_build(meta), _schedule(args, steps, s)),
            sgd, [pruning.UpdatePruningStep()], strip)
    if not args.skip_tfmot:
        runs["TFMOT SGD (tf_keras)"] = tfmot_run(args, init_path, None, steps)
        for s in args.sparsities:
            runs[f"TFMOT s={s}"] = tfmot_run(args, init_path, s, steps)

    def shrink(model, row, fraction):
        row["unit_fraction"] = fraction
        removal = pruning.remove_pruned_filters(model)
        small = removal.model
        small.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        _, test = load()
        row["removed_model_test_accuracy"] = float(small.evaluate(test, verbose=0)[1])
        row["units_kept"] = json.dumps(removal.units)
        return small

    for s in args.sparsities:
        fraction, _ = _filter_fraction(meta, s)
        runs[f"structured s={s}"] = keras_run(
            f"structured s={s}",
            lambda f=fraction: pruning.prune_filters(_build(meta), _schedule(args, steps, f)),
            sgd, [pruning.UpdatePruningStep()],
            lambda model, row, f=fraction: shrink(model, row, f), removed=True)
    return runs


def tfmot_run(args, init_path, sparsity, steps):
    def run():
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.json")
            command = [
                args.tfmot_python, os.path.join(HERE, "tfmot_prune.py"),
                "--init-weights", init_path, "--out-json", out,
                "--dataset", args.dataset, "--epochs", str(args.epochs),
                "--batch-size", str(args.batch_size),
                "--learning-rate", str(args.learning_rate), "--seed", str(args.seed),
                "--momentum", str(args.momentum),
            ]
            if args.limit:
                command += ["--limit", str(args.limit)]
            if sparsity is not None:
                schedule = _schedule(args, steps, sparsity)
                command += ["--final-sparsity", str(sparsity),
                            "--begin-step", str(schedule.begin_step),
                            "--end-step", str(schedule.end_step),
                            "--power", str(schedule.power),
                            "--frequency", str(schedule.frequency)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            subprocess.run(command, check=True, env=env)
            with open(out) as f:
                return json.load(f)

    return run


def time_training(args, meta, init_path, total_steps):
    """Median seconds per training step of each method, interleaved rounds.

    The end-of-epoch times of the full runs are taken minutes apart on a
    machine shared with other jobs; here every Keras 3 method trains on the
    same `--time-steps` cached batches, one warm-up call each, then
    `--time-repeats` rounds that alternate between methods, keeping the
    median. TFMOT is timed the same way against tf_keras SGD inside its own
    process (`tfmot_prune.py --time-steps`). Masks update every
    `--frequency` steps during the timed steps, as in training.
    """
    n = args.time_steps
    train, _ = fixed_order_train(args.dataset, args.batch_size, args.seed, n * args.batch_size)
    train = train.cache()
    with np.load(init_path) as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]

    def plain():
        model = _build(meta)
        model.set_weights(weights)
        return model

    lr = args.learning_rate

    def sgd():
        return keras.optimizers.SGD(lr, momentum=args.momentum)

    mu = args.grda_mus[len(args.grda_mus) // 2]
    methods = {
        "SGD": (plain(), sgd(), []),
        "GRDA": (plain(), GRDA(lr, c=args.grda_c, mu=mu), []),
        "magnitude": (pruning.prune_low_magnitude(plain(), _schedule(args, total_steps, 0.9)),
                      sgd(), [pruning.UpdatePruningStep()]),
        "structured": (pruning.prune_filters(plain(), _schedule(args, total_steps, 0.7)),
                       sgd(), [pruning.UpdatePruningStep()]),
    }
    for model, optimizer, _ in methods.values():
        model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    times = {name: [] for name in methods}
    names = list(methods)
    for round_ in range(args.time_repeats + 1):
        # Rotate the order every round so no method always runs first.
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            model, _, callbacks = methods[name]
            start = time.perf_counter()
            model.fit(train, epochs=1, verbose=0, callbacks=callbacks)
            if round_:
                times[name].append((time.perf_counter() - start) / n)
    rows = [{"method": name, "seconds_per_step": float(np.median(t)), "reference": "SGD"}
            for name, t in times.items()]
    if not args.skip_tfmot:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "timing.json")
            schedule = _schedule(args, total_steps, 0.9)
            subprocess.run([
                args.tfmot_python, os.path.join(HERE, "tfmot_prune.py"),
                "--init-weights", init_path, "--out-json", out, "--dataset", args.dataset,
                "--batch-size", str(args.batch_size), "--learning-rate", str(lr),
                "--momentum", str(args.momentum),
                "--seed", str(args.seed), "--final-sparsity", "0.9",
                "--end-step", str(schedule.end_step), "--frequency", str(schedule.frequency),
                "--time-steps", str(n), "--time-repeats", str(args.time_repeats),
            ], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            with open(out) as f:
                measured = json.load(f)
        rows.append({"method": "tf_keras SGD", "seconds_per_step": measured["tf_keras SGD"],
                     "reference": "tf_keras SGD"})
        rows.append({"method": "TFMOT", "seconds_per_step": measured["TFMOT"],
                     "reference": "tf_keras SGD"})
    by_name = {row["method"]: row for row in rows}
    for row in rows:
        row["ratio"] = row["seconds_per_step"] / by_name[row["reference"]]["seconds_per_step"]
    return rows


def time_inference(rows, meta, test_x, repeats=7):
    """Inference speedup of each structured run's smaller model, interleaved with the dense one.

    The smaller model's speed depends only on its shape, so it is rebuilt
    from the kept unit counts (`units_kept`) and timed alternately with the
    dense CNN over the test set (batches of 1000, traced); medians.
    """
    import tensorflow as tf

    batches = [tf.constant(test_x[i:i + 1000]) for i in range(0, len(test_x), 1000)]

    def timer(model):
        forward = tf.function(lambda batch: model(batch, training=False))
        forward(batches[0]).numpy()

        def run():
            start = time.perf_counter()
            outputs = [forward(batch) for batch in batches]
            outputs[-1].numpy()
            return time.perf_counter() - start

        return run

    result = []
    for name, row in _final(rows).items():
        if _method(name) != "structured" or not row.get("units_kept"):
            continue
        kept = {layer: counts[0] for layer, counts in json.loads(row["units_kept"]).items()}
        dense = timer(_build(meta))
        small = timer(models.cnn(meta.input_shape, meta.num_classes,
                                 filters=(kept["conv_1"], kept["conv_2"]),
                                 dense_units=kept["dense"]))
        dense_times, small_times = [], []
        for _ in range(repeats):
            dense_times.append(dense())
            small_times.append(small())
        d, sm = float(np.median(dense_times)), float(np.median(small_times))
        result.append({"run": name, "dense_seconds": d, "small_seconds": sm, "speedup": d / sm})
    return result


def _final(rows):
    final = {}
    for row in rows:
        final[row["run"]] = row
    return final


def _f(row, key, default=float("nan")):
    value = row.get(key, "")
    try:
        return float(value) if value not in ("", None) else default
    except (TypeError, ValueError):
        return default


def _method(name):
    return name.split(" ")[0]


def summary_table(rows, timing=(), inference=()):
    final = _final(rows)
    seconds = {}
    for row in rows:
        seconds.setdefault(row["run"], []).append(_f(row, "seconds"))
    median = {name: float(np.median(v)) for name, v in seconds.items()}
    step = {row["method"]: row for row in timing}
    speedup = {row["run"]: _f(row, "speedup") for row in inference}
    sgd = final["SGD"]
    sgd_acc = _f(sgd, "test_accuracy")

    def fmt(v, spec, suffix=""):
        return "–" if math.isnan(v) else format(v, spec) + suffix

    lines = [
        "| run | kernel sparsity | test accuracy | Δ vs SGD (pt) | s/epoch (full run) | "
        "step time vs SGD | MACs vs dense | inference speedup | .keras gzip (KB) | "
        "TFLite sparse (KB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in final.items():
        acc = _f(row, "removed_model_test_accuracy", _f(row, "test_accuracy"))
        method = _method(name)
        key = {"SGD": "SGD", "GRDA": "GRDA", "magnitude": "magnitude",
               "structured": "structured", "TFMOT": "TFMOT"}.get(method)
        if name.startswith("TFMOT SGD"):
            key = "tf_keras SGD"
        ratio = _f(step.get(key, {}), "ratio")
        ratio_text = fmt(ratio, ".2f", "×")
        if key == "TFMOT" and not math.isnan(ratio):
            ratio_text += " (vs tf_keras SGD)"
        macs = _f(row, "macs") / _f(sgd, "macs") if "macs" in row else float("nan")
        infer = speedup.get(name, 1.0 if method in ("SGD", "GRDA", "magnitude") else float("nan"))
        lines.append(
            f"| {name} | {_f(row, 'kernel_sparsity'):.1%} | {acc:.2%} | "
            f"{100 * (acc - sgd_acc):+.2f} | {median[name]:.1f} | {ratio_text} | "
            f"{fmt(macs, '.2f')} | {fmt(infer, '.2f', '×')} | "
            f"{fmt(_f(row, 'size/keras_gzip') / 1024, '.0f')} | "
            f"{fmt(_f(row, 'size/tflite_sparse') / 1024, '.0f')} |"
        )
    return "\n".join(lines)


def plot_accuracy_vs_sparsity(rows, path, title):
    import matplotlib.pyplot as plt

    final = _final(rows)
    styles = {"GRDA": ("o-", {}, "GRDA (mu sweep, no retraining)"),
              "magnitude": ("s-", {}, "tf_lowprec magnitude pruning"),
              "TFMOT": ("^--", {"markersize": 11, "markerfacecolor": "none"},
                        "TFMOT prune_low_magnitude (tf_keras)"),
              "structured": ("D-", {}, "tf_lowprec filter pruning (filters removed)")}
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, (style, extra, label) in styles.items():
        points = sorted(
            (_f(row, "kernel_sparsity"),
             _f(row, "removed_model_test_accuracy", _f(row, "test_accuracy")), name)
            for name, row in final.items()
            if _method(name) == method and _f(row, "kernel_sparsity") > 0)
        if points:
            axis.plot([100 * p[0] for p in points], [100 * p[1] for p in points], style,
                      label=label, **extra)
    if "SGD" in final:
        axis.axhline(100 * _f(final["SGD"], "test_accuracy"), color="gray", ls=":",
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

    final = _final(rows)
    chosen = {}
    for name, row in final.items():
        method = _method(name)
        if method in ("SGD",) or name.startswith("TFMOT SGD"):
            continue
        gap = abs(_f(row, "kernel_sparsity") - target)
        if method not in chosen or gap < chosen[method][0]:
            chosen[method] = (gap, name)
    names = [name for _, name in chosen.values()]
    figure, axis = plt.subplots(figsize=(8, 4.8))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [100 * _f(final[name], f"sparsity/{layer}", 0.0) for layer in LAYERS]
        axis.bar(np.arange(len(LAYERS)) + i * width, values, width,
                 label=f"{name} ({_f(final[name], 'kernel_sparsity'):.1%} overall)")
    axis.set_xticks(np.arange(len(LAYERS)) + 0.4 - width / 2)
    axis.set_xticklabels(LAYERS)
    axis.set_ylabel("kernel sparsity (%)")
    axis.set_ylim(0, 105)
    axis.set_title(f"layer-wise sparsity, runs nearest {target:.0%} overall")
    axis.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def _default_tfmot_python():
    venv = "/tmp/tfmot-venv/bin/python"
    return venv if os.path.exists(venv) else sys.executable


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.0,
                        help="SGD momentum of the SGD, magnitude, TFMOT and structured runs")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on the first N training examples only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sparsities", default="0.8,0.9,0.95")
    parser.add_argument("--prune-until", type=float, default=2 / 3,
                        help="fraction of training at which the schedule reaches its target")
    parser.add_argument("--frequency", type=int, default=50, help="steps between mask updates")
    parser.add_argument("--grda-c", type=float, default=0.005)
    parser.add_argument("--grda-mus", default="0.7,0.75,0.8")
    parser.add_argument("--tfmot-python", default=_default_tfmot_python(),
                        help="interpreter with the [tfmot] extra (a separate venv)")
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--time-steps", type=int, default=100,
                        help="steps per interleaved timing round (0: skip the timing phase)")
    parser.add_argument("--time-repeats", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pruning"))
    parser.add_argument("--keep-exports", default=None, metavar="DIR",
                        help="keep each run's .keras/.tflite exports under DIR "
                             "(default: a temporary directory)")
    args = parser.parse_args(argv)
    args.sparsities = [float(s) for s in args.sparsities.split(",")]
    args.grda_mus = [float(m) for m in args.grda_mus.split(",")]
    os.makedirs(args.out, exist_ok=True)

    meta = data.info(args.dataset)
    keras.utils.set_random_seed(args.seed)
    init_path = os.path.join(tempfile.mkdtemp(prefix="pruning_init_"), "initial_weights.npz")
    np.savez(init_path, *_build(meta).get_weights())  # the same for every run (seeded)
    _, train_size = fixed_order_train(args.dataset, args.batch_size, args.seed, args.limit)
    steps = args.epochs * math.ceil(train_size / args.batch_size)
    test_x = _test_arrays(data.load(args.dataset, "test", 1000))

    runs = make_runs(args, meta, init_path, test_x, steps)
    rows = run_grid(runs, os.path.join(args.out, "pruning_comparison.csv"))
    timing_path = os.path.join(args.out, "timing.csv")
    if args.time_steps and not os.path.exists(timing_path):
        write_csv_atomic(timing_path, time_training(args, meta, init_path, steps))
    timing = read_csv(timing_path) if os.path.exists(timing_path) else []
    inference_path = os.path.join(args.out, "inference.csv")
    if not os.path.exists(inference_path):
        write_csv_atomic(inference_path, time_inference(rows, meta, test_x))
    inference = read_csv(inference_path)
    subset = f" on {args.limit} examples" if args.limit else ""
    momentum = f", momentum {args.momentum}" if args.momentum else ""
    title = (f"{args.dataset} CNN, {args.epochs} epochs{subset}, "
             f"SGD lr={args.learning_rate}{momentum}")
    plot_accuracy_vs_sparsity(rows, os.path.join(args.out, "accuracy_vs_sparsity.png"), title)
    plot_layer_sparsity(rows, os.path.join(args.out, "layer_sparsity.png"))
    table = summary_table(rows, timing, inference)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(f"{title}; pruning schedule PolynomialDecay(0 -> s, power 3) over the first "
                f"{args.prune_until:.0%} of {steps} steps, masks every {args.frequency} steps.\n\n")
        f.write(table + "\n")
    write_csv_atomic(os.path.join(args.out, "settings.csv"), [{
        k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in vars(args).items()
    } | {"steps": steps}])
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
