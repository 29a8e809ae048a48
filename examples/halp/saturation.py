"""How often HALP's offset hits the end of its range, for a few mu (diagnostic).

    nice -n 10 python examples/halp/saturation.py        # ~2 min, 2 CPU cores

Same model, data and hyperparameters as `halp_study.py` (HALP 8 bits,
T = 1 epoch), for `mu` in {20, 5, 1}. At the end of every epoch (= the end
of an outer loop, just before the next re-centering) it records the fraction
of offset codes at the clamp (-2^(b-1) or 2^(b-1)-1) and the epoch's training
loss. The offset can move `||g~_i|| / mu` from the center per coordinate;
when the weights need to move farther within one outer loop, codes pile up at
the clamp and HALP loses ground against full-precision SVRG.

Writes `<out>/saturation.csv` and prints a table.
"""

import argparse
import os

import keras
import numpy as np

from tf_lowprec import data, models
from tf_lowprec.experiments.results_io import write_csv_atomic
from tf_lowprec.optimizers import HALP
from tf_lowprec.training import VarianceReduced


class Saturation(keras.callbacks.Callback):
    def __init__(self, bits):
        super().__init__()
        self.low, self.high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        codes = np.concatenate(
            [opt.offset(v).numpy().ravel() for v in self.model.trainable_variables]
        )
        clamped = np.mean((codes == self.low) | (codes == self.high))
        self.rows.append({"epoch": epoch + 1, "saturated_fraction": float(clamped),
                          "mean_abs_code": float(np.abs(codes).mean()),
                          "train_loss": float(logs["loss"])})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=12800)
    parser.add_argument("--mus", default="20,5,1")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    rows = []
    for mu in (float(m) for m in args.mus.split(",")):
        train = data.load("fashion_mnist", "train", 128, seed=0, limit=args.limit)
        keras.utils.set_random_seed(0)
        model = VarianceReduced(models.cnn((28, 28, 1), 10, filters=(16, 32), dense_units=64))
        model.compile(optimizer=HALP(0.1, T="1epoch", mu=mu, bits=8, seed=1, weight_decay=5e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        probe = Saturation(8)
        model.fit(train, epochs=args.epochs, verbose=0, callbacks=[probe])
        rows += [{"mu": mu, **row} for row in probe.rows]
        for row in probe.rows:
            print(f"mu={mu:g} epoch {row['epoch']}: {100 * row['saturated_fraction']:.1f}% "
                  f"codes at the clamp, mean |k| {row['mean_abs_code']:.1f}, "
                  f"train loss {row['train_loss']:.4f}", flush=True)
    write_csv_atomic(os.path.join(args.out, "saturation.csv"), rows)


if __name__ == "__main__":
    main()
