"""Optimizer x learning rate x loss sweeps, resumable, with a table and plots.

    tf-lowprec sweep --dataset mnist --model mlp \
        --optimizers sgd,momentum,adam,rmsprop,adagrad,adadelta,ftrl,proximal_sgd,proximal_adagrad,grda \
        --learning-rates 1,0.1,0.01,0.001,0.0001 --losses sparse_softmax_cross_entropy \
        --epochs 2 --seeds 1 --out sweep_out

Every (optimizer, learning rate, loss, seed) is one run of `model.fit` from
the seed's initial weights. Written to `--out`:

* `results.csv`: one row per run per epoch (train/test loss and accuracy,
  seconds, sparsity, `diverged`, and the training loss of every block of
  `--log-every` steps as `train_loss_blocks`). Rewritten atomically after
  every run; started again with the same arguments the sweep skips finished
  runs (an interrupted run is redone from its start).
* `summary.md`: the best learning rate of each optimizer (and loss), by final
  test accuracy averaged over seeds; runs whose loss became NaN/Inf are
  recorded as diverged (training stops there) and the sweep goes on.
* `loss_curves.png` (running mean of the training loss over iterations),
  `accuracy_curves.png` (test accuracy per epoch), both at each optimizer's
  best learning rate, and `heatmap.png` (final test accuracy, optimizer x
  learning rate, one panel per loss).
"""

import argparse
import json
import math
import os
import statistics
import sys

import keras

from tf_lowprec import data, models
from tf_lowprec.experiments.run_grid import run_grid
from tf_lowprec.experiments.sweep_plots import plot_heatmap, plot_sweep_curves
from tf_lowprec.experiments.train_run import train_and_evaluate
from tf_lowprec.optimizers import registry
from tf_lowprec.training.losses import get_loss
from tf_lowprec.training.step_losses import StepLossRecorder

CLASSIC_OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad", "adadelta", "ftrl",
                      "proximal_sgd", "proximal_adagrad", "grda")
# Settings that change what a finished run means; a resumed sweep must match.
_FIXED = ("dataset", "model", "model_kwargs", "epochs", "batch_size", "limit", "log_every")


def run_name(optimizer, learning_rate, loss, seed):
    return f"{optimizer} lr={learning_rate:g} loss={loss} seed={seed}"


def _check_resume(out, settings):
    path = os.path.join(out, "sweep_config.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        changed = {k: (previous.get(k), settings[k]) for k in _FIXED if previous.get(k) != settings[k]}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out} holds a sweep with other settings ({details}); its rows would not be "
                "comparable. Use another --out, or the original settings to resume it."
            )
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(settings, f, indent=1)


def _make_run(settings, optimizer, learning_rate, loss, seed, verbose):
    meta = data.info(settings["dataset"])

    def run():
        def train():
            return data.load(settings["dataset"], "train", settings["batch_size"], seed=seed,
                             limit=settings["limit"], data_dir=settings["data_dir"],
                             drop_remainder=True)

        def test():
            return data.load(settings["dataset"], "test", 1000, data_dir=settings["data_dir"])

        recorder = StepLossRecorder(settings["log_every"])
        _, rows = train_and_evaluate(
            lambda: models.get(settings["model"], input_shape=meta.input_shape,
                               num_classes=meta.num_classes, **settings["model_kwargs"]),
            registry.get(optimizer, learning_rate=learning_rate),
            train, test, settings["epochs"], loss=get_loss(loss), seed=seed,
            callbacks=[recorder, keras.callbacks.TerminateOnNaN()], verbose=verbose,
        )
        for row, blocks in zip(rows, recorder.block_losses):
            row["train_loss_blocks"] = " ".join(f"{b:.6g}" for b in blocks)
        diverged = any(row["diverged"] for row in rows)
        return [{"optimizer": optimizer, "learning_rate": learning_rate, "loss": loss,
                 "seed": seed, **row, "diverged": diverged} for row in rows]

    return run


def summarize(rows):
    """Best learning rate per (optimizer, loss) by mean final test accuracy.

    Returns a list of dicts: optimizer, loss, best_learning_rate,
    test_accuracy (mean over seeds), test_accuracy_sd, seeds, sparsity (mean
    final fraction of exact zeros at that rate), diverged (the learning rates
    at which any seed diverged).
    """
    final = {}
    for row in rows:
        final[row["run"]] = row  # rows are in epoch order: keeps the last epoch
    groups = {}
    for row in final.values():
        key = (row["optimizer"], row["loss"])
        groups.setdefault(key, {}).setdefault(float(row["learning_rate"]), []).append(row)
    summary = []
    for (optimizer, loss), by_lr in groups.items():
        scores, diverged = {}, []
        for lr, runs in by_lr.items():
            if any(str(r["diverged"]) == "True" for r in runs):
                diverged.append(lr)
                continue
            accs = [float(r["test_accuracy"]) for r in runs]
            scores[lr] = (statistics.mean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0,
                          len(accs), statistics.mean(float(r["sparsity"]) for r in runs))
        best = max(scores, key=lambda lr: scores[lr][0]) if scores else math.nan
        mean, sd, n, sparsity = scores.get(best, (math.nan, math.nan, 0, math.nan))
        summary.append({"optimizer": optimizer, "loss": loss, "best_learning_rate": best,
                        "test_accuracy": mean, "test_accuracy_sd": sd, "seeds": n, "sparsity": sparsity,
                        "diverged": " ".join(f"{lr:g}" for lr in sorted(diverged))})
    return summary


def format_summary(summary):
    lines = ["| optimizer | loss | best lr | test accuracy | sparsity | diverged at lr |",
             "|---|---|---|---|---|---|"]
    for s in summary:
        acc = ("—" if math.isnan(s["test_accuracy"]) else
               f"{s['test_accuracy']:.2%}" + (f" ± {s['test_accuracy_sd']:.2%}" if s["seeds"] > 1 else ""))
        lr = "—" if math.isnan(s["best_learning_rate"]) else f"{s['best_learning_rate']:g}"
        sparsity = "—" if math.isnan(s["sparsity"]) else f"{s['sparsity']:.1%}"
        lines.append(f"| {s['optimizer']} | {s['loss']} | {lr} | {acc} | {sparsity} | {s['diverged'] or '—'} |")
    return "\n".join(lines)


def validate(dataset, optimizers, learning_rates, losses):
    """Raises ValueError naming the bad value before any training starts."""
    for name in optimizers:
        registry.get(name, learning_rate=0.1)
    for name in losses:
        get_loss(name)
    for lr in learning_rates:
        if not lr > 0:
            raise ValueError(f"learning rates must be > 0. Received: {lr}")
    data.info(dataset)


def sweep(dataset, model, optimizers, learning_rates, losses=("sparse_softmax_cross_entropy",),
          epochs=1, seeds=(0,), batch_size=128, limit=None, data_dir=None, out="sweep_out",
          model_kwargs=None, log_every=10, verbose=0, progress=True):
    """Runs the grid (see the module docstring); returns `(rows, summary)`.

    Args:
        dataset: `mnist`, `fashion_mnist`, `cifar10` or `cifar100`.
        model: A `tf_lowprec.models` name (`mlp`, `cnn`, `resnet18`, `vgg16`).
        optimizers: `tf_lowprec.optimizers.registry` names.
        learning_rates: Positive floats.
        losses: `tf_lowprec.training.losses` names.
        epochs: Epochs per run.
        seeds: Seeds; each gives other initial weights and data order.
        batch_size: Training batch size (equal batches: the remainder is dropped).
        limit: Use only the first `limit` training examples.
        data_dir: Directory searched first for the dataset files.
        out: Output directory.
        model_kwargs: Extra model arguments, e.g. `{"hidden_units": []}` for
            the single-layer (softmax regression) net.
        log_every: Block length, in steps, of the recorded training loss.
        verbose: `fit` verbosity per run.
        progress: Show the progress bar over runs.
    """
    model_kwargs = dict(model_kwargs or {})
    learning_rates = [float(lr) for lr in learning_rates]  # Keras rejects int rates
    validate(dataset, optimizers, learning_rates, losses)
    settings = {"dataset": dataset, "model": model, "model_kwargs": model_kwargs, "epochs": epochs,
                "batch_size": batch_size, "limit": limit, "log_every": log_every,
                "data_dir": data_dir}
    _check_resume(out, settings)
    runs = {run_name(o, lr, loss, s): _make_run(settings, o, lr, loss, s, verbose)
            for loss in losses for o in optimizers for lr in learning_rates for s in seeds}
    rows = run_grid(runs, os.path.join(out, "results.csv"), progress=progress)
    rows = [r for r in rows if r["run"] in runs]  # an extended grid may hold more
    summary = summarize(rows)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(format_summary(summary) + "\n")
    best = {(s["optimizer"], s["loss"]): s["best_learning_rate"] for s in summary}
    plot_sweep_curves(rows, best, out, title=f"{dataset} / {model}", every=log_every)
    plot_heatmap(rows, os.path.join(out, "heatmap.png"), title=f"{dataset} / {model}: final test accuracy")
    return rows, summary


def _floats(text):
    return [float(t) for t in text.split(",") if t.strip()]


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tf-lowprec sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=data.NAMES)
    parser.add_argument("--model", default="mlp", choices=models.NAMES)
    parser.add_argument("--model-kwargs", type=json.loads, default={},
                        help='JSON, e.g. \'{"hidden_units": []}\' for the single-layer net')
    parser.add_argument("--optimizers", type=_names, default=list(CLASSIC_OPTIMIZERS))
    parser.add_argument("--learning-rates", type=_floats, default=[1, 0.1, 0.01, 0.001, 0.0001])
    parser.add_argument("--losses", type=_names, default=["sparse_softmax_cross_entropy"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds (0..K-1)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="sweep_out")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    for flag, value in (("--epochs", args.epochs), ("--seeds", args.seeds),
                        ("--batch-size", args.batch_size), ("--log-every", args.log_every)):
        if value < 1:
            parser.error(f"{flag}: must be >= 1, got {value}")
    try:
        validate(args.dataset, args.optimizers, args.learning_rates, args.losses)
    except ValueError as error:
        parser.error(str(error))
    _, summary = sweep(args.dataset, args.model, args.optimizers, args.learning_rates,
                       args.losses, args.epochs, range(args.seeds), args.batch_size, args.limit,
                       args.data_dir, args.out, args.model_kwargs, args.log_every, args.verbose)
    print(format_summary(summary))
    print(f"\nwrote {args.out}/results.csv, summary.md, loss_curves.png, accuracy_curves.png, heatmap.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
