"""Accuracy vs sparsity: GRDA, tf_lowprec magnitude pruning, TFMOT and filter pruning.

    nice -n 10 python benchmarks/pruning_comparison.py --tfmot-python VENV/bin/python
    python benchmarks/pruning_timing.py          # step and inference time (idle machine)
    python benchmarks/pruning_report.py          # summary.md and plots
    python benchmarks/pruning_comparison.py --epochs 1 --limit 2000 --sparsities 0.9 \
        --grda-mus 0.7 --skip-tfmot --out /tmp/pc                   # smoke run, ~2 min

This script does the training runs (~25 min on 2 CPU cores);
`pruning_timing.py` the interleaved step-time and inference-time
measurements; `pruning_report.py` the table and plots
(`pruning_common.py` holds what the three share).

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
  interpreter (`--tfmot-python`: a virtual environment with tf_lowprec and
  its `[tfmot]` extra, `pip install -e ".[tfmot]"`; or `--skip-tfmot`);
  `TFMOT SGD (tf_keras)` is tf_keras' own unpruned time reference;
* `structured s=...`: `prune_filters` (L1 norm, same schedule on the fraction
  of units), with the fraction chosen so that physically removing the
  filters (`remove_pruned_filters`) removes a fraction `s` of the kernel
  weights; accuracy, MACs and inference time are those of the smaller model.

Sparsity is measured on kernels (Conv/Dense weights, biases excluded), the
set TFMOT prunes. Results go to `--out` (default benchmarks/results/pruning):
`pruning_comparison.csv` (one row per run per epoch, written after each run;
an interrupted comparison resumes and skips finished runs) and
`settings.csv` (read by `pruning_timing.py` and `pruning_report.py`); at the
end the report (`summary.md`, `accuracy_vs_sparsity.png`,
`layer_sparsity.png`) is written with whatever timing files exist.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
from pruning_common import build, kernel_sizes, schedule, write_settings
from pruning_report import report
from tfmot_shared_data import fixed_order_train

from tf_lowprec import data, pruning
from tf_lowprec.experiments.run_grid import run_grid
from tf_lowprec.experiments.train_run import train_and_evaluate
from tf_lowprec.optimizers.grda import GRDA

HERE = os.path.dirname(os.path.abspath(__file__))


def _final_stats(model, row, dense_reference, export_dir=None, removed=False):
    """Adds kernel sparsity, per-layer sparsity, MACs and export sizes.

    With `removed=True` (a model whose pruned filters were physically removed)
    sparsity is the fraction of the dense model's kernel weights that are gone.
    """
    if removed:
        sizes = kernel_sizes(model)
        row["kernel_sparsity"] = 1 - sum(sizes.values()) / sum(dense_reference.values())
        for name, total in dense_reference.items():
            row[f"sparsity/{name}"] = 1 - sizes.get(name, 0) / total
    else:
        measured = pruning.sparsity(model, kernels_only=True)
        row["kernel_sparsity"] = measured.sparsity
        for name, layer in measured.layers.items():
            row[f"sparsity/{name.rsplit('/', 1)[-1]}"] = layer.sparsity
    row["params"] = model.count_params()
    row["macs"] = pruning.count_flops(model).macs
    if export_dir is not None:
        sizes = pruning.export_sizes(model, export_dir)
        row.update({f"size/{k}": v for k, v in sizes.as_dict().items()})
    row["dense_kernels"] = sum(dense_reference.values())


def _filter_fraction(meta, target):
    """Fraction of units per layer whose removal removes `target` of the kernels."""
    model = pruning.prune_filters(build(meta), pruning.ConstantSparsity(0.5))
    before = sum(kernel_sizes(pruning.strip_pruning(model)).values())
    leaders = [layer for layer in model.layers
               if isinstance(layer, pruning.PruneFilters) and layer.follow is None]

    def removed(fraction):
        for layer in leaders:
            n = int(layer.unit_mask.shape[0])
            mask = np.zeros(n, np.float32)
            mask[: pruning.keep_count(n, fraction)] = 1
            layer.unit_mask.assign(mask)
        small = pruning.remove_pruned_filters(model).model
        return 1 - sum(kernel_sizes(small).values()) / before

    low, high = 0.0, 0.99
    for _ in range(14):
        mid = (low + high) / 2
        low, high = (mid, high) if removed(mid) < target else (low, mid)
    best = min((low, high), key=lambda f: abs(removed(f) - target))
    return best, removed(best)


def make_runs(args, meta, init_path, steps):
    dense_sizes = kernel_sizes(build(meta))
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
            _final_stats(model, row, dense_sizes,
                         os.path.join(exports, name.replace(" ", "_").replace("=", "")),
                         removed=removed)
            return rows

        return run

    runs = {"SGD": keras_run("SGD", lambda: build(meta), sgd)}
    for mu in args.grda_mus:
        runs[f"GRDA mu={mu}"] = keras_run(
            f"GRDA mu={mu}", lambda: build(meta),
            lambda mu=mu: GRDA(lr, c=args.grda_c, mu=mu))

    def strip(model, row):
        return pruning.strip_pruning(model)

    for s in args.sparsities:
        runs[f"magnitude s={s}"] = keras_run(
            f"magnitude s={s}",
            lambda s=s: pruning.prune_low_magnitude(build(meta), schedule(args, steps, s)),
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
            lambda f=fraction: pruning.prune_filters(build(meta), schedule(args, steps, f)),
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
                plan = schedule(args, steps, sparsity)
                command += ["--final-sparsity", str(sparsity),
                            "--begin-step", str(plan.begin_step),
                            "--end-step", str(plan.end_step),
                            "--power", str(plan.power),
                            "--frequency", str(plan.frequency)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            subprocess.run(command, check=True, env=env)
            with open(out) as f:
                return json.load(f)

    return run


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
    parser.add_argument("--tfmot-python", default=None, metavar="PYTHON",
                        help="interpreter of a virtual environment with tf_lowprec[tfmot] "
                             "(TFMOT needs tf_keras, which cannot share this process)")
    parser.add_argument("--skip-tfmot", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pruning"))
    parser.add_argument("--keep-exports", default=None, metavar="DIR",
                        help="keep each run's .keras/.tflite exports under DIR "
                             "(default: a temporary directory)")
    args = parser.parse_args(argv)
    if not args.skip_tfmot and not args.tfmot_python:
        parser.error("--tfmot-python PYTHON is required (or pass --skip-tfmot)")
    args.sparsities = [float(s) for s in args.sparsities.split(",")]
    args.grda_mus = [float(m) for m in args.grda_mus.split(",")]
    os.makedirs(args.out, exist_ok=True)

    meta = data.info(args.dataset)
    keras.utils.set_random_seed(args.seed)
    init_path = os.path.join(tempfile.mkdtemp(prefix="pruning_init_"), "initial_weights.npz")
    np.savez(init_path, *build(meta).get_weights())  # the same for every run (seeded)
    _, train_size = fixed_order_train(args.dataset, args.batch_size, args.seed, args.limit)
    steps = args.epochs * -(-train_size // args.batch_size)
    write_settings(args.out, args, steps)
    run_grid(make_runs(args, meta, init_path, steps),
             os.path.join(args.out, "pruning_comparison.csv"))
    print(report(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
