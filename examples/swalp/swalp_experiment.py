"""SWALP vs SGD-LP vs SWA-FP vs SGD-FP (Yang et al., 2019), on Fashion-MNIST or CIFAR.

    nice -n 10 python examples/swalp/swalp_experiment.py            # Fashion-MNIST CNN
    python examples/swalp/swalp_experiment.py --dataset cifar10 --model vgg16_bn \\
        --epochs 300 --swa-start 200 --lr 0.05 --swa-lr 0.01        # the paper's CIFAR setup

Two training runs per seed, as in SWALP's `train.py`, each on the SWALP
learning-rate schedule (`PaperPiecewise(lr, total=swa_start,
final_learning_rate=swa_lr)`, per epoch) with weight averaging from
`swa_start` on:

* `fp`: full-precision SGD with momentum 0.9 + SWA. Its non-averaged model
  after `swa_start` epochs is **SGD-FP**, the averaged model at the end
  **SWA-FP**.
* `lp`: `tf_lowprec.optimizers.swalp` (8-bit small-block BFP weights,
  gradients, momentum and accumulator; 8-bit BFP activations and errors;
  stochastic rounding). Non-averaged after `swa_start` epochs: **SGD-LP**;
  averaged at the end: **SWALP**, evaluated as in the paper with
  full-precision activations (the averaged weights copied into the
  unquantized model), and also with the 8-bit activations.

Every epoch the non-averaged ("raw") model is evaluated on the test set
(`raw_test_*`); the `test_*` columns are `fit`'s validation, which is the
averaged model once averaging has started.

Writes to `--out`: `runs.csv` (one row per run per epoch, written after
each run: an interrupted experiment resumes), `summary.csv`, `summary.md`
and `curves.png`.
"""

import argparse
import os
import statistics
import sys

import keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from tf_lowprec import data, models  # noqa: E402
from tf_lowprec.experiments.plots import plot_epoch_curves  # noqa: E402
from tf_lowprec.experiments.results_io import write_csv_atomic  # noqa: E402
from tf_lowprec.experiments.run_grid import run_grid  # noqa: E402
from tf_lowprec.optimizers import swalp  # noqa: E402
from tf_lowprec.training import recompute_batchnorm_statistics  # noqa: E402
from tf_lowprec.training.epoch_timer import EpochTimer  # noqa: E402

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--model", default="cnn", choices=["cnn", "vgg16", "vgg16_bn"])
    p.add_argument("--width", type=float, default=1.0, help="VGG width multiplier")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--swa-start", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--swa-lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=None,
                   help="Keras decoupled weight decay (paper: 5e-4 coupled ~ 5e-3 here)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--word-length", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="training subset size")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--precisions", nargs="+", default=["fp", "lp"], choices=["fp", "lp"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--verbose", type=int, default=2)
    args = p.parse_args(argv)
    if not 0 < args.swa_start < args.epochs:
        p.error(f"--swa-start must be in [1, epochs). Received: {args.swa_start}")
    return args


def build_model(args):
    meta = data.info(args.dataset)
    if args.model == "cnn":
        return models.cnn(meta.input_shape, meta.num_classes)
    return models.vgg16(meta.input_shape, meta.num_classes,
                        batch_norm=args.model == "vgg16_bn", width_multiplier=args.width)


class RawEvaluation(keras.callbacks.Callback):
    """Evaluates the training (non-averaged) weights at every epoch end; logs the epoch's rate."""

    def __init__(self, test):
        super().__init__()
        self.test = test

    def on_epoch_begin(self, epoch, logs=None):
        self.rate = float(self.model.optimizer.learning_rate)

    def on_epoch_end(self, epoch, logs=None):
        loss, accuracy = self.model.evaluate(self.test, verbose=0)
        logs["raw_test_loss"], logs["raw_test_accuracy"] = loss, accuracy
        logs["lr"] = self.rate


def make_run(args, precision, seed):
    def run():
        train = data.load(args.dataset, "train", args.batch_size, seed=seed,
                          limit=args.limit, data_dir=args.data_dir)
        test = data.load(args.dataset, "test", 500, limit=args.test_limit,
                         data_dir=args.data_dir)
        steps = int(train.cardinality())
        keras.utils.set_random_seed(seed)
        base = build_model(args)
        setup = swalp(base, steps_per_epoch=steps, swa_start=args.swa_start,
                      learning_rate=args.lr, swa_lr=args.swa_lr,
                      weight_decay=args.weight_decay,
                      word_length=args.word_length if precision == "lp" else None,
                      data=train, seed=seed)
        model = setup.model
        model.compile(setup.optimizer, LOSS, metrics=["accuracy"])
        history = model.fit(train, epochs=args.epochs, validation_data=test, shuffle=False,
                            callbacks=[EpochTimer(), *setup.callbacks, RawEvaluation(test)],
                            verbose=args.verbose)
        h = history.history
        rows = []
        for e in range(len(h["loss"])):
            rows.append({
                "precision": precision, "seed": seed, "epoch": e + 1, "lr": h["lr"][e],
                "train_loss": h["loss"][e], "train_accuracy": h["accuracy"][e],
                "raw_test_loss": h["raw_test_loss"][e],
                "raw_test_accuracy": h["raw_test_accuracy"][e],
                "test_loss": h["val_loss"][e], "test_accuracy": h["val_accuracy"][e],
                "swa_num_averaged": h["swa_num_averaged"][e], "seconds": h["seconds"][e],
            })
        # After fit the model holds the averaged weights. The paper evaluates
        # the averaged model with full-precision activations: copy the
        # weights into the unquantized architecture (same weight order).
        fp_model = build_model(args)
        fp_model.set_weights(model.get_weights())
        recompute_batchnorm_statistics(fp_model, train)  # with FP activations
        fp_model.compile(loss=LOSS, metrics=["accuracy"])
        rows[-1]["swa_fp_activations_test_accuracy"] = fp_model.evaluate(test, verbose=0)[1]
        rows[-1]["swa_test_accuracy"] = model.evaluate(test, verbose=0)[1]
        rows[-1]["train_batches"] = steps
        return rows

    return run


def _error(accuracy):
    return 100.0 * (1.0 - float(accuracy))


def _mean_sd(values):
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarize(rows, args):
    """The paper's four columns (test error %), per seed and as mean ± sd."""
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run"], []).append(row)
    cells = {}  # column -> list over seeds
    per_seed = []
    for name, group in sorted(by_run.items()):
        group = sorted(group, key=lambda r: int(r["epoch"]))
        precision, seed = group[0]["precision"], group[0]["seed"]
        at_start = group[args.swa_start - 1]
        final = group[-1]
        sgd, sgd_end = _error(at_start["raw_test_accuracy"]), _error(final["raw_test_accuracy"])
        swa = _error(final["swa_fp_activations_test_accuracy"])
        swa_lp_act = _error(final["swa_test_accuracy"])
        label = "FP" if precision == "fp" else "LP"
        cells.setdefault(f"SGD-{label}", []).append(sgd)
        cells.setdefault("SWA-FP" if precision == "fp" else "SWALP", []).append(swa)
        if precision == "lp":
            cells.setdefault("SWALP (8-bit activations)", []).append(swa_lp_act)
        cells.setdefault(f"SGD-{label} at epoch {len(group)}", []).append(sgd_end)
        per_seed.append({
            "run": name, "precision": precision, "seed": seed,
            "sgd_test_error_at_swa_start": sgd, "sgd_test_error_at_end": sgd_end,
            "swa_test_error": swa, "swa_test_error_quantized_activations": swa_lp_act,
            "seconds": sum(float(r["seconds"]) for r in group),
        })
    return cells, per_seed


def write_outputs(rows, args):
    cells, per_seed = summarize(rows, args)
    write_csv_atomic(os.path.join(args.out, "summary.csv"), per_seed)
    order = ["SGD-FP", "SWA-FP", "SGD-LP", "SWALP", "SWALP (8-bit activations)"]
    order += sorted(k for k in cells if k not in order)
    lines = ["| " + " | ".join(k for k in order if k in cells) + " |",
             "|" + "---|" * sum(k in cells for k in order),
             "| " + " | ".join(_mean_sd(cells[k]) for k in order if k in cells) + " |"]
    table = "\n".join(lines)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(f"Test error (%), seeds {sorted({int(r['seed']) for r in per_seed})}\n\n{table}\n")
    curves = []
    for row in rows:
        label = "FP" if row["precision"] == "fp" else "LP"
        averaged = int(float(row["swa_num_averaged"])) > 0
        curves.append({"curve": f"SGD-{label} (raw)", "epoch": row["epoch"],
                       "seed": row["seed"], "test_error": _error(row["raw_test_accuracy"]),
                       "train_loss": row["train_loss"]})
        if averaged:
            curves.append({"curve": "SWA-FP" if label == "FP" else "SWALP (8-bit act.)",
                           "epoch": row["epoch"], "seed": row["seed"],
                           "test_error": _error(row["test_accuracy"]),
                           "train_loss": "nan"})  # the averaged model is not trained
    mean_curves = {}
    for c in curves:
        mean_curves.setdefault((c["curve"], int(c["epoch"])), []).append(c)
    plot_rows = [{"curve": k[0], "epoch": k[1],
                  "test error (%)": statistics.mean(c["test_error"] for c in v),
                  "train_loss": statistics.mean(float(c["train_loss"]) for c in v)}
                 for k, v in sorted(mean_curves.items())]
    plot_epoch_curves(plot_rows, ["test error (%)", "train_loss"],
                      os.path.join(args.out, "curves.png"), group_key="curve",
                      title=f"{args.dataset} {args.model}: SWALP schedule, swa_start={args.swa_start}")
    return table


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs = {f"{p}-seed{s}": make_run(args, p, s) for s in args.seeds for p in args.precisions}
    rows = run_grid(runs, os.path.join(args.out, "runs.csv"))
    table = write_outputs(rows, args)
    print(table)
    return rows


if __name__ == "__main__":
    main()
