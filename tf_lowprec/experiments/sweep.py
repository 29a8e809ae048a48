"""Optimizer x learning rate x loss sweeps, resumable, with a table and plots.

    tf-lowprec sweep --dataset mnist --model mlp \
        --optimizers sgd,momentum,adam,rmsprop,adagrad,adadelta,ftrl,proximal_sgd,proximal_adagrad,grda \
        --learning-rates 1,0.1,0.01,0.001,0.0001 --losses sparse_softmax_cross_entropy \
        --epochs 2 --seeds 1 --out sweep_out

Every (optimizer, learning rate, loss, seed) is one run of `model.fit` from
the seed's initial weights. Written to `--out`:

* `.lock`: held (`flock`) while a sweep writes the directory; a second sweep
  on the same `--out` stops at once with a one-line error naming the
  holder's pid (the lock is released when the holder exits, even by a
  crash, so it never blocks a resume).
* `sweep_config.json`: the settings that give the rows their meaning
  (dataset, model and its kwargs, epochs, batch size, limit, data location,
  ...); a resume with other settings is refused before any training.
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

from tf_lowprec import data, models, validation
from tf_lowprec.data import locate
from tf_lowprec.experiments.output_lock import (
    DirectoryLock,
    DirectoryLockedError,
    check_output_dir,
)
from tf_lowprec.experiments.results_io import write_text_atomic
from tf_lowprec.experiments.run_grid import run_grid
from tf_lowprec.experiments.sweep_plots import plot_heatmap, plot_sweep_curves
from tf_lowprec.experiments.train_run import train_and_evaluate
from tf_lowprec.optimizers import registry
from tf_lowprec.optimizers.svrg import SVRG
from tf_lowprec.training.losses import get_loss
from tf_lowprec.training.step_losses import StepLossRecorder
from tf_lowprec.training.tensorboard_diagnostics import TensorBoardDiagnostics

CLASSIC_OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad", "adadelta", "ftrl",
                      "proximal_sgd", "proximal_adagrad", "grda")
# Settings that change what a finished run means; a resumed sweep must match.
# `key_format` 2: run names hold the exact learning rate (`repr`), not 6 digits.
_FIXED = ("key_format", "dataset", "model", "model_kwargs", "epochs", "batch_size", "limit",
          "log_every", "data_dir", "data_location")
_KEY_FORMAT = 2


class ResumeRefusedError(ValueError):
    """`out` holds a sweep made with other settings (or an unreadable config)."""


def run_name(optimizer, learning_rate, loss, seed):
    """The run's key in `results.csv`: exact values, so distinct runs never share one."""
    return f"{optimizer} lr={float(learning_rate)!r} loss={loss} seed={seed}"


def tensorboard_run_dir(optimizer, learning_rate, loss, seed):
    """The run's TensorBoard folder under `<out>/tensorboard/` (exact learning rate)."""
    return f"{optimizer}_lr={float(learning_rate)!r}_{loss}_seed={seed}"


def _check_resume(out, settings):
    """Refuses to add rows to a sweep made with other settings; records the settings."""
    path = os.path.join(out, "sweep_config.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                previous = json.load(f)
        except (OSError, ValueError) as error:
            raise ResumeRefusedError(f"{path} is not a readable sweep config ({error}); use another "
                             "--out, or remove the file to start this sweep again.") from None
        changed = {k: (previous.get(k), settings.get(k)) for k in _FIXED
                   if previous.get(k) != settings.get(k)}
        if changed:
            details = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ResumeRefusedError(
                f"{out} holds a sweep with other settings ({details}); its rows would not be "
                "comparable. Use another --out, or the original settings to resume it."
            )
    write_text_atomic(path, json.dumps(settings, indent=1) + "\n")


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
        callbacks = [recorder, keras.callbacks.TerminateOnNaN()]
        if settings.get("tensorboard"):
            # One TensorBoard run per configuration: losses and metrics
            # (Keras) plus sparsity, thresholds, ... (TensorBoardDiagnostics).
            log_dir = os.path.join(settings["out"], "tensorboard",
                                   tensorboard_run_dir(optimizer, learning_rate, loss, seed))
            callbacks += [keras.callbacks.TensorBoard(log_dir),
                          TensorBoardDiagnostics(log_dir, histograms=False)]
        _, rows = train_and_evaluate(
            lambda: models.get(settings["model"], input_shape=meta.input_shape,
                               num_classes=meta.num_classes, **settings["model_kwargs"]),
            registry.get(optimizer, learning_rate=learning_rate),
            train, test, settings["epochs"], loss=get_loss(loss), seed=seed,
            callbacks=callbacks, verbose=verbose,
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
    """Raises ValueError naming the bad value (names, learning rates)."""
    data.info(dataset)
    for lr in learning_rates:
        validation.positive_float(lr, "learning_rates")
    for name in optimizers:
        optimizer = registry.get(name, learning_rate=0.1)
        if isinstance(optimizer, SVRG):
            raise ValueError(
                f"optimizer {name!r} needs tf_lowprec.training.VarianceReduced (full-gradient "
                "snapshots), and the sweep trains with plain model.fit; leave it out of "
                "--optimizers.")
    for name in losses:
        get_loss(name)


def _check_model(model, model_kwargs, meta):
    if not isinstance(model_kwargs, dict):
        raise ValueError(
            f"model_kwargs must be a JSON object (dict). Received: model_kwargs={model_kwargs!r}")
    try:
        models.get(model, input_shape=meta.input_shape, num_classes=meta.num_classes,
                   **model_kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model {model!r} rejects model_kwargs={model_kwargs!r}: {error}") from None


def plan(dataset, model, optimizers, learning_rates, losses=("sparse_softmax_cross_entropy",),
         epochs=1, seeds=(0,), batch_size=128, limit=None, data_dir=None, out="sweep_out",
         model_kwargs=None, log_every=10, tensorboard=False):
    """Checks every argument of `sweep` and returns its settings; writes nothing.

    Everything that could stop the sweep later is checked here, before any
    training: names, learning rates (finite, > 0), counts, the model with its
    kwargs (built once), the data (both splits found; at least one full
    training batch) and the output path (a directory or absent).

    Raises:
        ValueError: a one-line message naming the argument and the value.
    """
    model_kwargs = {} if model_kwargs is None else model_kwargs
    learning_rates = [validation.positive_float(lr, "learning_rates") for lr in learning_rates]
    validate(dataset, optimizers, learning_rates, losses)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("log_every", log_every)):
        validation.positive_int(value, name)
    validation.optional(validation.positive_int, limit, "limit")
    seeds = [validation.seed(s, "seeds", allow_none=False) for s in seeds]
    if not (optimizers and learning_rates and losses and seeds):
        raise ValueError("optimizers, learning_rates, losses and seeds must each be non-empty.")
    out = os.fspath(out)
    check_output_dir(out)
    meta = data.info(dataset)
    _check_model(model, model_kwargs, meta)
    location = {}
    for split in ("train", "test"):
        source, report = locate.locate(meta.name, split, data_dir)
        if source is None and data_dir is not None:
            raise ValueError(f"no {dataset} {split} data in data_dir {os.fspath(data_dir)!r} "
                             f"({'; '.join(report)}).")
        location[split] = list(source.paths) if source else "keras download"
    x, _ = data.load_numpy(meta.name, "train", data_dir=data_dir)
    examples = len(x) if limit is None else min(limit, len(x))
    if examples < batch_size:
        raise ValueError(
            f"the training subset ({examples} examples) is smaller than one batch "
            f"(batch_size={batch_size}); batches are full (drop_remainder), so no step would "
            "run. Lower --batch-size or raise --limit.")
    return {"key_format": _KEY_FORMAT, "dataset": dataset, "model": model,
            "model_kwargs": model_kwargs, "epochs": epochs, "batch_size": batch_size,
            "limit": limit, "log_every": log_every,
            "data_dir": None if data_dir is None else os.path.abspath(data_dir),
            "data_location": location, "optimizers": list(optimizers),
            "learning_rates": learning_rates, "losses": list(losses), "seeds": seeds, "out": out,
            "tensorboard": validation.boolean(tensorboard, "tensorboard")}


def run(settings, verbose=0, progress=True):
    """Runs a `plan`: locks `out`, checks a resume, trains, writes; returns `(rows, summary)`.

    Raises:
        DirectoryLockedError: another sweep is writing to `out`.
        ResumeRefusedError: (a ValueError) `out` holds a sweep made with
            other settings.
    """
    out = settings["out"]
    with DirectoryLock(out):
        _check_resume(out, {k: settings[k] for k in _FIXED})
        runs = {run_name(o, lr, loss, s): _make_run(settings, o, lr, loss, s, verbose)
                for loss in settings["losses"] for o in settings["optimizers"]
                for lr in settings["learning_rates"] for s in settings["seeds"]}
        rows = run_grid(runs, os.path.join(out, "results.csv"), progress=progress)
        rows = [r for r in rows if r["run"] in runs]  # an extended grid may hold more
        summary = summarize(rows)
        write_text_atomic(os.path.join(out, "summary.md"), format_summary(summary) + "\n")
        best = {(s["optimizer"], s["loss"]): s["best_learning_rate"] for s in summary}
        title = f"{settings['dataset']} / {settings['model']}"
        plot_sweep_curves(rows, best, out, title=title, every=settings["log_every"])
        plot_heatmap(rows, os.path.join(out, "heatmap.png"), title=f"{title}: final test accuracy")
    return rows, summary


def sweep(dataset, model, optimizers, learning_rates, losses=("sparse_softmax_cross_entropy",),
          epochs=1, seeds=(0,), batch_size=128, limit=None, data_dir=None, out="sweep_out",
          model_kwargs=None, log_every=10, verbose=0, progress=True, tensorboard=False):
    """Runs the grid (see the module docstring); returns `(rows, summary)`.

    `plan` checks every argument first (nothing is trained or written when
    one is wrong); `run` then holds `out`'s lock for the whole sweep.

    Args:
        dataset: `mnist`, `fashion_mnist`, `cifar10` or `cifar100`.
        model: A `tf_lowprec.models` name (`mlp`, `cnn`, `resnet18`, `vgg16`).
        optimizers: `tf_lowprec.optimizers.registry` names (not `svrg`/`halp`,
            which need `VarianceReduced`).
        learning_rates: Finite floats > 0.
        losses: `tf_lowprec.training.losses` names.
        epochs: Epochs per run.
        seeds: Seeds; each gives other initial weights and data order.
        batch_size: Training batch size (equal batches: the remainder is dropped).
        limit: Use only the first `limit` training examples (at least one batch).
        data_dir: Directory holding the dataset (the only place searched when given).
        out: Output directory (locked while the sweep runs).
        model_kwargs: Extra model arguments, e.g. `{"hidden_units": []}` for
            the single-layer (softmax regression) net.
        log_every: Block length, in steps, of the recorded training loss.
        verbose: `fit` verbosity per run.
        progress: Show the progress bar over runs.
        tensorboard: Also write one TensorBoard run per configuration under
            `<out>/tensorboard/` (Keras's `TensorBoard` plus
            `TensorBoardDiagnostics`: sparsity, GRDA threshold, ...).
            `tensorboard --logdir <out>/tensorboard` compares them.

    Raises:
        ValueError: a bad argument, or `out` holds a sweep with other settings.
        DirectoryLockedError: another sweep is writing to `out`.
    """
    settings = plan(dataset, model, optimizers, learning_rates, losses, epochs, seeds,
                    batch_size, limit, data_dir, out, model_kwargs, log_every, tensorboard)
    return run(settings, verbose, progress)


def _floats(text):
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _json_object(text):
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"width\": 16}}', got {text!r}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-lowprec sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=data.NAMES)
    parser.add_argument("--model", default="mlp", choices=models.NAMES)
    parser.add_argument("--model-kwargs", type=_json_object, default={},
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
    parser.add_argument("--out", default="sweep_out",
                        help="output directory; locked while the sweep runs")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--tensorboard", action="store_true",
                        help="write one TensorBoard run per configuration to <out>/tensorboard/")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, value in (("--epochs", args.epochs), ("--seeds", args.seeds),
                        ("--batch-size", args.batch_size), ("--log-every", args.log_every)):
        if value < 1:
            parser.error(f"{flag}: must be >= 1, got {value}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit: must be >= 1, got {args.limit}")
    try:
        settings = plan(args.dataset, args.model, args.optimizers, args.learning_rates,
                        args.losses, args.epochs, range(args.seeds), args.batch_size,
                        args.limit, args.data_dir, args.out, args.model_kwargs, args.log_every,
                        args.tensorboard)
    except (ValueError, FileNotFoundError) as error:
        parser.error(_one_line(error))
    try:
        _, summary = run(settings, args.verbose)
    except (DirectoryLockedError, ResumeRefusedError) as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"\ntf-lowprec sweep: interrupted; finished runs are saved in {args.out}/results.csv. "
              "Run the same command again to resume.", file=sys.stderr)
        return 130
    print(format_summary(summary))
    print(f"\nwrote {args.out}/results.csv, summary.md, loss_curves.png, accuracy_curves.png, heatmap.png")
    return 0


def _one_line(error):
    """The first line of a (possibly multi-line) error message."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
