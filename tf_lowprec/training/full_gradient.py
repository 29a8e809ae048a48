"""Full-dataset gradients and the callback that snapshots them for SVRG/HALP."""

from __future__ import annotations

import time
from typing import Any

import keras
import tensorflow as tf

from tf_lowprec.optimizers.svrg import SVRG


def num_replicas():
    """Replicas of the current `tf.distribute` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def batch_size(x):
    """The number of examples in the batch `x` (any structure of tensors)."""
    first = next(t for t in keras.tree.flatten(x) if t is not None)
    return tf.shape(first)[0]


def training_loss(model, x, y, y_pred, sample_weight):
    """`model`'s compiled loss on one batch, with its regularization losses.

    Keras's `Model._compute_loss(..., training=True)` (what `train_step`
    computes), called from one place: the full-gradient pass and both
    passes of `VarianceReduced.train_step` use it.
    """
    return model._compute_loss(
        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
    )


def check_finite_dataset(data, name="data"):
    """Raises `ValueError` unless `data` is a finite `tf.data.Dataset`."""
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(
            f"`{name}` must be a finite, batched tf.data.Dataset of (x, y) or "
            f"(x, y, sample_weight). Received: {name}={data!r}"
        )
    if data.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"`{name}` is infinite (e.g. `.repeat()` without a count), so a "
            "full pass over it never ends. Pass the finite training dataset "
            f"(without `.repeat()`). Received: {name}={data!r}"
        )


class FullGradient:
    """`grad F(w)`: the training-loss gradient averaged over a whole dataset.

    ```
    grad F(w) = (sum_B n_B * grad f_B(w)) / (sum_B n_B)
    ```

    where `f_B` is the model's training loss on batch `B` (compiled loss,
    a per-batch mean, plus regularisation losses) and `n_B` the batch size,
    so the result is the exact per-sample mean even with a short last batch.
    The batches run in training mode (dropout, batch statistics) as ordinary
    training steps do, and like them update batch-norm moving statistics and
    the random state; loss metrics are not touched. Under a
    `tf.distribute` strategy each replica computes its share and the sums
    are all-reduced, so every replica gets the same full gradient.
    Accumulation is in float64.

    The per-batch step is traced once (`tf.function`) and reused on every
    call; batches are fed from Python, as `fit` does.

    Args:
        model: A built, compiled `keras.Model` (its `compute_loss` defines
            the objective).
        data: A finite, batched `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)`.
    """

    def __init__(self, model: keras.Model, data: tf.data.Dataset) -> None:
        check_finite_dataset(data)
        self.model = model
        self.data = data
        self._function = None

    def _build(self):
        model = self.model
        strategy = model.distribute_strategy
        variables = model.trainable_variables
        with strategy.scope():
            distributed = strategy.experimental_distribute_dataset(self.data)

        def replica_sums(batch):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                # Keep loss-metric updates out of it. Regularisers read the
                # variables through the scope's mapping, which reads (and the
                # tape watches) the variables themselves.
                current = [(v, tf.convert_to_tensor(v)) for v in variables]
                with keras.StatelessScope(state_mapping=current):
                    loss = training_loss(model, x, y, y_pred, sample_weight)
                count = tf.cast(batch_size(x), loss.dtype)
                # Keras divides the loss by the number of replicas; undo it
                # and weight by the batch size: a sum over samples.
                total = loss * tf.cast(num_replicas(), loss.dtype) * count
            grads = tape.gradient(total, variables)
            grads = [
                tf.zeros(v.shape, tf.float64)
                if g is None
                else tf.cast(tf.convert_to_tensor(g), tf.float64)
                for g, v in zip(grads, variables)
            ]
            return grads, tf.cast(count, tf.float64)

        # One traced step per batch, driven by a Python loop: a `for` over
        # the dataset inside a tf.function becomes a `reduce` whose body
        # runs on tf.data's threads, several times slower for matmul-heavy
        # models (measured 2-10x on 2 CPU cores).
        @tf.function(reduce_retracing=True)
        def accumulate(batch, sums, total):
            grads, count = strategy.run(replica_sums, args=(batch,))
            # One reduce per tensor: with one replica per worker,
            # MultiWorkerMirroredStrategy's `reduce` takes a list of plain
            # tensors for one value and fails to stack differing shapes.
            grads = [strategy.reduce("SUM", g, axis=None) for g in grads]
            count = strategy.reduce("SUM", count, axis=None)
            return [s + g for s, g in zip(sums, grads)], total + count

        def full_pass():
            sums = [tf.zeros(v.shape, tf.float64) for v in variables]
            total = tf.constant(0.0, tf.float64)
            for batch in distributed:
                sums, total = accumulate(batch, sums, total)
            return sums, total

        return full_pass

    def __call__(self) -> list[tf.Tensor]:
        """Returns one gradient per trainable variable (variable dtype)."""
        if self._function is None:
            self._function = self._build()
        sums, total = self._function()
        total = float(total)
        if total <= 0:
            raise ValueError("The full-gradient dataset yielded no samples.")
        return [
            tf.cast(s / total, v.dtype)
            for s, v in zip(sums, self.model.trainable_variables)
        ]


def full_gradient(model: keras.Model, data: tf.data.Dataset) -> list[tf.Tensor]:
    """One-shot `FullGradient(model, data)()` (retraces on every call)."""
    return FullGradient(model, data)()


class FullGradientSnapshot(keras.callbacks.Callback):
    """Takes the SVRG/HALP snapshot every `T` optimizer steps.

    Before a training step, if no snapshot exists yet or `T` steps have run
    since the last one, computes the full gradient over `data` at the current
    weights (`FullGradient`) and calls `optimizer.take_snapshot` (SVRG:
    `w~ = w`, `g~ = grad F(w)`; HALP additionally re-centers and rescales).
    The step of the last snapshot is an optimizer variable, so a run resumed
    from a `.keras` checkpoint keeps the schedule.

    `VarianceReduced.fit` adds one of these, on the training data, when none
    is given; pass one explicitly to use other data for the full gradient
    (e.g. the training set without augmentation).

    Args:
        data: A finite, batched `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)`; use the training batch size if the model
            has batch normalization (batch statistics depend on it).

    Attributes:
        snapshots: Number of snapshots taken by this callback.
        seconds: Wall time spent computing them.
    """

    def __init__(self, data: tf.data.Dataset) -> None:
        super().__init__()
        check_finite_dataset(data)
        self.data = data
        self.snapshots = 0
        self.seconds = 0.0
        self._full_gradient = None
        self._period = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if not isinstance(optimizer, SVRG):
            raise ValueError(
                "FullGradientSnapshot needs a model compiled with "
                "tf_lowprec.optimizers.SVRG or HALP (wrapped in "
                "tf_lowprec.training.VarianceReduced). Received optimizer: "
                f"{optimizer!r}"
            )
        self._period = optimizer.period(self.params.get("steps"))
        if not optimizer.built:
            # Without a strategy, Keras builds the optimizer only when it
            # traces the first step; the snapshot comes before that. This
            # is what `fit` itself does under a strategy.
            with self.model.distribute_strategy.scope():
                self.model._symbolic_build(data_batch=next(iter(self.data)))
        per_execution = int(getattr(self.model, "steps_per_execution", 1) or 1)
        if per_execution > 1 and self._period % per_execution:
            raise ValueError(
                f"T={self._period} steps is not a multiple of "
                f"steps_per_execution={per_execution}; snapshots can only be "
                "taken between executions. Choose T or steps_per_execution "
                "so that it is."
            )
        if self._full_gradient is None or self._full_gradient.model is not self.model:
            self._full_gradient = FullGradient(self.model, self.data)

    @property
    def period(self) -> int:
        """`T` in steps, as resolved for the current `fit` call."""
        return self._period

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = self.model.optimizer
        last = int(optimizer.snapshot_iteration.numpy())
        step = int(optimizer.iterations.numpy())
        if last < 0 or step - last >= self._period:
            self.take_snapshot()

    def take_snapshot(self) -> None:
        """Computes the full gradient now and installs it in the optimizer."""
        start = time.perf_counter()
        self.model.optimizer.take_snapshot(self._full_gradient())
        self.seconds += time.perf_counter() - start
        self.snapshots += 1
