"""Studies that resume mid-run: one CSV row per (run, seed, epoch), one checkpoint per run.

A long study (several configurations x several seeds x many epochs) on a
shared machine gets interrupted. `ResumableStudy` makes the interruption
cost at most one epoch and makes a resumed run identical to one that was
never stopped:

* every epoch's row is added to the results CSV as soon as the epoch ends
  (rewritten atomically, `write_csv_atomic`), so the finished epochs are the
  durable record;
* after the row, the run's whole training state is written to
  `<checkpoint_dir>/<run>-seed<seed>.npz` (atomically): every model and
  optimizer variable, which covers the weights, slots, step counter, the
  learning-rate schedule's position, random-seed states and, for wrapper
  optimizers, e.g. the SWA average;
* the data order of epoch `e` is drawn from `(seed, e)` alone
  (`epoch_dataset`), not from an iterator's position, so it does not
  depend on where the previous process stopped.

Started again, a run with all its epochs in the CSV is skipped; one with a
checkpoint restores it and continues with the next epoch (an epoch whose row
was written but whose checkpoint was not is simply trained again and its row
replaced). The checkpoint of a finished run is kept: it holds the final
weights (e.g. for a loss-landscape analysis).
"""

import io
import os
import re

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from tf_lowprec.experiments.results_io import (
    read_csv,
    write_bytes_atomic,
    write_csv_atomic,
)

_KEY = ("run", "seed", "epoch")


def epoch_order(num_examples, seed, epoch):
    """The permutation of `range(num_examples)` used in 0-based `epoch` for `seed`."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_examples)


def epoch_dataset(x, y, batch_size, seed, epoch, map_fn=None):
    """A batched `tf.data.Dataset` over `(x, y)` in the order of `epoch_order`.

    Args:
        x, y: Numpy arrays with the same first dimension.
        batch_size: Batch size (the last batch may be smaller).
        seed, epoch: Select the permutation (see `epoch_order`).
        map_fn: Optional batch map, e.g. `tf_lowprec.data.normalizer(name)`.
    """
    order = epoch_order(len(x), seed, epoch)
    ds = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(batch_size)
    if map_fn is not None:
        ds = ds.map(map_fn)
    return ds.prefetch(2)


def checkpoint_name(run, seed):
    """File name of a run's checkpoint: the run name with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(run)) + f"-seed{int(seed)}.npz"


def save_variables(path, variables, epoch):
    """Writes the values of `variables` and the number of finished epochs to `path`, atomically."""
    arrays = {f"v{i}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(variables)}
    buffer = io.BytesIO()
    np.savez(buffer, epoch=np.int64(epoch), count=np.int64(len(arrays)), **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load_variables(path, variables=None):
    """Reads a checkpoint; assigns it to `variables` when given.

    Returns:
        `(epoch, values)`: finished epochs and the list of arrays.

    Raises:
        ValueError: the checkpoint does not match `variables` (count or shapes).
    """
    with np.load(path) as f:
        epoch = int(f["epoch"])
        values = [f[f"v{i}"] for i in range(int(f["count"]))]
    if variables is not None:
        variables = list(variables)
        if len(values) != len(variables):
            raise ValueError(
                f"Checkpoint {path} holds {len(values)} variables, the run has "
                f"{len(variables)}. Received: variables={len(variables)}"
            )
        for variable, value in zip(variables, values):
            if tuple(variable.shape) != value.shape:
                raise ValueError(
                    f"Checkpoint {path}: variable {variable.path} has shape "
                    f"{tuple(variable.shape)}, the checkpoint {value.shape}."
                )
            variable.assign(value)
    return epoch, values


class ResumableStudy:
    """A results CSV keyed by `(run, seed, epoch)` plus per-run checkpoints.

    Args:
        csv_path: The results CSV (created if absent; rows of earlier
            invocations are kept, as strings).
        checkpoint_dir: Folder of the per-run checkpoints (keep it out of
            version control).
        total_epochs: Epochs of the whole study, for the progress bar.
        progress: Show a progress bar over epochs. Defaults to `True`.
    """

    def __init__(self, csv_path, checkpoint_dir, total_epochs=None, progress=True):
        self.csv_path = csv_path
        self.checkpoint_dir = checkpoint_dir
        self.rows = read_csv(csv_path) if os.path.exists(csv_path) else []
        self._bar = tqdm(total=total_epochs, initial=len(self.rows), unit="epoch",
                         disable=not progress, dynamic_ncols=True)

    def close(self):
        self._bar.close()

    def checkpoint_path(self, run, seed):
        return os.path.join(self.checkpoint_dir, checkpoint_name(run, seed))

    def epochs_done(self, run, seed):
        """Sorted 1-based epochs of `(run, seed)` that have a row."""
        return sorted(int(r["epoch"]) for r in self.rows
                      if r["run"] == str(run) and str(r["seed"]) == str(seed))

    def run_rows(self, run, seed):
        """The rows of `(run, seed)`, by epoch."""
        rows = [r for r in self.rows if r["run"] == str(run) and str(r["seed"]) == str(seed)]
        return sorted(rows, key=lambda r: int(r["epoch"]))

    def is_done(self, run, seed, epochs):
        """Whether epochs 1..`epochs` of `(run, seed)` all have rows."""
        return set(range(1, epochs + 1)) <= set(self.epochs_done(run, seed))

    def _record(self, row):
        key = tuple(str(row[k]) for k in _KEY)
        self.rows = [r for r in self.rows if tuple(str(r[k]) for k in _KEY) != key]
        self.rows.append(row)
        write_csv_atomic(self.csv_path, self.rows)

    def train(self, run, seed, epochs, setup, train_epoch):
        """Trains `(run, seed)` for `epochs` epochs, resuming where it stopped.

        Args:
            run: Name of the configuration (the `run` column).
            seed: Integer seed (the `seed` column); `keras.utils.set_random_seed`
                is called with it before `setup`.
            epochs: Number of epochs of the run.
            setup: Zero-argument callable returning the run's state: any
                object whose `variables` attribute (or method) lists every
                variable that must survive an interruption, already built.
            train_epoch: `train_epoch(state, epoch)` trains the 0-based
                `epoch` and returns its row (a dict; `run`, `seed` and
                `epoch` = `epoch + 1` are added).

        Returns:
            The state after the last epoch, or `None` when the run was
            already complete (nothing was built).
        """
        if self.is_done(run, seed, epochs):
            return None
        self._bar.set_description(f"{run} seed {seed}")
        keras.utils.set_random_seed(int(seed))
        state = setup()
        variables = _variables(state)
        path = self.checkpoint_path(run, seed)
        start = 0
        if os.path.exists(path):
            start, _ = load_variables(path, variables)
        for epoch in range(start, epochs):
            row = {"run": str(run), "seed": int(seed), "epoch": epoch + 1,
                   **train_epoch(state, epoch)}
            new = str(epoch + 1) not in {str(e) for e in self.epochs_done(run, seed)}
            self._record(row)
            save_variables(path, variables, epoch + 1)
            if new:
                self._bar.update(1)
        return state


def _variables(state):
    variables = state.variables
    return list(variables() if callable(variables) else variables)
