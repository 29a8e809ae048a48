"""Quickstart: SGD vs GRDA on Fashion-MNIST, side by side.

    python -m tf_lowprec.quickstart            # ~3-5 min on 2 CPU cores
    python -m tf_lowprec.quickstart --help

Trains the small CNN (`tf_lowprec.models.cnn`) twice from the same initial
weights, once with plain SGD and once with gRDA at the same learning rate,
then prints a table (test accuracy, sparsity, seconds per epoch) and writes
`<out>/quickstart.csv` (one row per optimizer per epoch) and
`<out>/quickstart.png` (test accuracy and sparsity per epoch).

Fashion-MNIST is read from local files first (`--data-dir`,
`$TF_LOWPREC_DATA`, or `/usr/share/datasets/fashion-mnist` from Debian's
`dataset-fashion-mnist` package), so it runs offline.
"""

import argparse
import os
import sys

import keras

from tf_lowprec import data, models, validation
from tf_lowprec.experiments.output_lock import check_output_dir
from tf_lowprec.experiments.plots import plot_epoch_curves
from tf_lowprec.experiments.results_io import write_csv_atomic
from tf_lowprec.experiments.train_run import train_and_evaluate
from tf_lowprec.optimizers.grda import GRDA


def _flag_type(check, convert):
    """An argparse `type` from a `tf_lowprec.validation` check."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {_WORDS[convert]}, got {text!r}") from None
        try:
            return check(value, "value")
        except ValueError as error:
            requirement = str(error).split(". Received")[0].replace("Argument `value` ", "")
            raise argparse.ArgumentTypeError(f"{requirement}, got {text!r}") from None

    return parse


_WORDS = {int: "an integer", float: "a number"}
_positive_int = _flag_type(validation.positive_int, int)
_positive_float = _flag_type(validation.positive_float, float)
_non_negative_float = _flag_type(validation.non_negative_float, float)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tf_lowprec.quickstart",
        description="Train a CNN with SGD and with GRDA side by side; "
        "print test accuracy, sparsity and time, write a CSV and a PNG.",
    )
    parser.add_argument("--dataset", default="fashion_mnist", choices=data.NAMES)
    parser.add_argument("--epochs", type=_positive_int, default=5)
    parser.add_argument("--batch-size", type=_positive_int, default=128)
    parser.add_argument("--learning-rate", type=_positive_float, default=0.1,
                        help="shared by SGD and GRDA (default: 0.1)")
    parser.add_argument("--c", type=_non_negative_float, default=0.005,
                        help="GRDA threshold scale c (default: 0.005)")
    parser.add_argument("--mu", type=_positive_float, default=0.55,
                        help="GRDA threshold exponent mu (default: 0.55)")
    parser.add_argument("--limit", type=_positive_int, default=None,
                        help="use only the first N training examples")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the dataset files (searched first)")
    parser.add_argument("--out", default="quickstart_out",
                        help="output directory for quickstart.csv/.png")
    parser.add_argument("--seed", type=_flag_type(validation.seed, int), default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def format_table(rows):
    """Final-epoch summary: one line per optimizer."""
    last = {}
    for row in rows:
        last[row["optimizer"]] = row
    header = f"{'optimizer':<28} {'test acc':>9} {'sparsity':>9} {'s/epoch':>8}"
    lines = [header, "-" * len(header)]
    for name, row in last.items():
        seconds = [r["seconds"] for r in rows if r["optimizer"] == name]
        lines.append(
            f"{name:<28} {row['test_accuracy']:>9.2%} {row['sparsity']:>9.2%} "
            f"{sum(seconds) / len(seconds):>8.1f}"
        )
    return "\n".join(lines)


def run(args):
    """Runs the comparison described by parsed `args`; returns the rows."""
    meta = data.info(args.dataset)

    def train():
        return data.load(args.dataset, "train", args.batch_size, data_dir=args.data_dir,
                         seed=args.seed, limit=args.limit)

    def test():
        return data.load(args.dataset, "test", 1000, data_dir=args.data_dir)

    optimizers = {
        "SGD": lambda: keras.optimizers.SGD(args.learning_rate),
        f"GRDA(c={args.c}, mu={args.mu})": lambda: GRDA(
            args.learning_rate, c=args.c, mu=args.mu
        ),
    }
    rows = []
    for index, (name, make_optimizer) in enumerate(optimizers.items(), start=1):
        if not args.quiet:
            print(f"[{index}/{len(optimizers)}] {name} on {args.dataset}, "
                  f"{args.epochs} epochs", flush=True)
        _, run_rows = train_and_evaluate(
            lambda: models.cnn(meta.input_shape, meta.num_classes),
            make_optimizer(),
            train,
            test,
            epochs=args.epochs,
            seed=args.seed,
            verbose=0 if args.quiet else 1,
        )
        rows += [
            {"optimizer": name, "dataset": args.dataset,
             "learning_rate": args.learning_rate, **row}
            for row in run_rows
        ]
    return rows


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # every GRDA argument and the output directory are checked before the SGD run
        GRDA(args.learning_rate, c=args.c, mu=args.mu)
        check_output_dir(args.out, "--out")
    except ValueError as error:
        parser.error(str(error))
    try:
        rows = run(args)
    except data.DatasetNotFoundError as error:  # found before any training step
        message = str(error).splitlines()[0]
        if args.data_dir is None:
            message += (f" Pass --data-dir DIR (or set {data.ENV_VAR}); see "
                        "tf_lowprec.data.locate for the places searched.")
        parser.error(message)
    csv_path = os.path.join(args.out, "quickstart.csv")
    png_path = os.path.join(args.out, "quickstart.png")
    write_csv_atomic(csv_path, rows)
    plot_epoch_curves(
        rows, ["test_accuracy", "sparsity"], png_path,
        title=f"{args.dataset}: SGD vs GRDA (lr={args.learning_rate})",
    )
    print()
    print(format_table(rows))
    print(f"\nwrote {csv_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
