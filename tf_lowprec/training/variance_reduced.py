"""`VarianceReduced(model)`: the train step that SVRG and HALP need, for `fit`."""

from __future__ import annotations

import inspect
import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_lowprec.optimizers import registry
from tf_lowprec.optimizers.inner_optimizer import WrapsOneObject
from tf_lowprec.optimizers.svrg import SVRG
from tf_lowprec.training.full_gradient import (
    FullGradient,
    FullGradientSnapshot,
    batch_size,
    check_finite_dataset,
    num_replicas,
    training_loss,
)

_NO_SNAPSHOT = (
    "No full-gradient snapshot yet: VarianceReduced.fit adds the "
    "FullGradientSnapshot callback itself; with train_on_batch or a custom "
    "loop call model.take_snapshot(dataset) first (and every T steps)."
)


def _array_like(value):
    return isinstance(value, (np.ndarray, tf.Tensor)) or (
        isinstance(value, (list, tuple, dict))
        and all(
            isinstance(v, (np.ndarray, tf.Tensor)) for v in keras.tree.flatten(value)
        )
        and len(keras.tree.flatten(value)) > 0
    )


def _dense(gradient, variable):
    if gradient is None:
        return tf.zeros(variable.shape, variable.dtype)
    return tf.convert_to_tensor(gradient)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class VarianceReduced(WrapsOneObject, keras.Model):
    """Wraps a model so `fit` can train it with SVRG or HALP.

    Variance-reduced methods need what a Keras optimizer never sees: the
    minibatch gradient at two points and a full-dataset gradient every `T`
    steps. This wrapper provides both and changes nothing else: `call`,
    `evaluate`, `predict`, metrics and saving behave as for the wrapped
    model, whose variables it shares.

    Training step, on minibatch `B` (replica-local under `tf.distribute`):

    ```
    g_snap = grad f_B(w~)     # stateless pass at the snapshot weights
    g_cur  = grad f_B(w)      # the ordinary training pass
    optimizer.apply_variance_reduced(g_cur - g_snap)   # adds g~ after the
                                                       # all-reduce
    ```

    Both passes run in training mode on the same batch with the same dropout
    mask and batch statistics; the snapshot pass maps the trainable variables
    to the snapshot values through a `keras.StatelessScope` and discards any
    state it would write (batch-norm moving statistics, random state,
    metrics), so model state advances exactly as in plain training. The loss
    reported by `fit` is the loss at the current weights.

    `fit` adds a `FullGradientSnapshot` callback over the training data
    unless one is passed: `x` must then be a finite `tf.data.Dataset` or
    arrays (with `y`, `batch_size`, `sample_weight`, `validation_split` as
    usual). For generators, `PyDataset`s, infinite datasets or a different
    full-gradient set (e.g. without augmentation), pass
    `callbacks=[tf_lowprec.training.FullGradientSnapshot(dataset)]`.

    Example:

    ```python
    model = tf_lowprec.training.VarianceReduced(tf_lowprec.models.cnn())
    model.compile(
        optimizer=tf_lowprec.optimizers.HALP(0.05, T="0.5epoch", mu=20, bits=8),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train_ds, epochs=10, validation_data=test_ds)
    model.save("halp.keras")   # optimizer state included; resumes exactly
    ```

    Args:
        model: The `keras.Model` to train (any kind: functional, Sequential,
            subclassed).
        **kwargs: `name`, `trainable`, as for `keras.Model`.

    References:
        Johnson and Zhang, NIPS 2013 (SVRG); De Sa et al., "High-Accuracy
        Low-Precision Training", 2018 (HALP). The two-pass step follows the
        closure-based `step` of HazyResearch/torchhalp.
    """

    _wrapped_key = "model"  # `from_config`: the wrapped model (`WrapsOneObject`)

    def __init__(self, model: keras.Model | dict[str, Any], **kwargs: Any) -> None:
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Argument `model` must be a keras.Model. Received: model={model!r}"
            )
        kwargs.setdefault("name", f"variance_reduced_{model.name}")
        super().__init__(**kwargs)
        self.inner = model
        if model.built:
            self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.inner(inputs, training=training)

    def compile(
        self,
        optimizer: str | dict[str, Any] | keras.optimizers.Optimizer = "rmsprop",
        loss: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """As `keras.Model.compile` (same positional order); `optimizer` must be `SVRG` or `HALP`.

        Also accepts a registered name (`"svrg"`, `"halp"`) or a config dict.
        """
        if isinstance(optimizer, (str, dict)):
            try:
                optimizer = registry.get(optimizer)
            except ValueError:
                pass
        if not isinstance(optimizer, SVRG):
            raise ValueError(
                "VarianceReduced trains with a variance-reduced optimizer: "
                "pass tf_lowprec.optimizers.SVRG(...) or HALP(...) (or the "
                "names 'svrg' / 'halp'). For any other optimizer compile the "
                f"unwrapped model instead. Received: optimizer={optimizer!r}"
            )
        super().compile(optimizer, loss, *args, **kwargs)

    # ------------------------------------------------------------- training
    def train_step(self, data: Any) -> dict[str, Any]:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        optimizer = self.optimizer
        variables = self.trainable_variables
        if not optimizer.built:  # `apply` would build it, but we read it first
            optimizer.build(variables)
        checked = tf.debugging.assert_non_negative(
            optimizer.snapshot_iteration, message=_NO_SNAPSHOT
        )
        with tf.control_dependencies([checked] if checked is not None else []):
            snapshot = [
                tf.identity(optimizer.snapshot_point(v)) for v in variables
            ]

        # Gradient at the snapshot weights, without touching model state.
        with tf.GradientTape() as tape:
            tape.watch(snapshot)
            with keras.StatelessScope(state_mapping=list(zip(variables, snapshot))):
                y_snap = self(x, training=True)
                loss_snap = training_loss(self, x, y, y_snap, sample_weight)
                loss_snap = optimizer.scale_loss(loss_snap)
        grads_snap = tape.gradient(loss_snap, snapshot)

        # The ordinary pass at the current weights.
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = training_loss(self, x, y, y_pred, sample_weight)
            self._loss_tracker.update_state(
                loss * tf.cast(num_replicas(), loss.dtype), sample_weight=batch_size(x)
            )
            loss = optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)

        corrections = [
            _dense(g, v) - _dense(s, v)
            for g, s, v in zip(grads, grads_snap, variables)
        ]
        optimizer.apply_variance_reduced(corrections, variables)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def take_snapshot(self, data: tf.data.Dataset) -> None:
        """Computes the full gradient over `data` and starts a new outer loop.

        For `train_on_batch` and custom loops; `fit` does it by itself.

        Args:
            data: A finite, batched `tf.data.Dataset` of `(x, y)` or
                `(x, y, sample_weight)`.
        """
        if not isinstance(self.optimizer, SVRG):
            raise ValueError("Compile the model with SVRG or HALP first.")
        check_finite_dataset(data)
        if not self.optimizer.built:
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch=next(iter(data)))
        self.optimizer.take_snapshot(FullGradient(self, data)())

    def fit(self, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        """`keras.Model.fit`, plus a `FullGradientSnapshot` on the training data.

        See the class docstring for which `x` can be used as is.
        """
        bound = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs)
        arguments = dict(bound.arguments)
        arguments.pop("self")
        callbacks = list(arguments.get("callbacks") or [])
        if not any(isinstance(c, FullGradientSnapshot) for c in callbacks):
            callbacks.insert(0, FullGradientSnapshot(self._training_set(arguments)))
        arguments["callbacks"] = callbacks
        return super().fit(**arguments)

    @staticmethod
    def _training_set(arguments):
        """The dataset the automatic snapshot callback averages over."""
        how = (
            "Pass callbacks=[tf_lowprec.training.FullGradientSnapshot(dataset)] "
            "with a finite, batched tf.data.Dataset of the training data."
        )
        if arguments.get("class_weight") is not None:
            raise ValueError(
                "`class_weight` is not used by the full gradient; use "
                f"`sample_weight` (or a dataset yielding weights). {how}"
            )
        x = arguments.get("x")
        if isinstance(x, tf.data.Dataset):
            if x.cardinality() == tf.data.INFINITE_CARDINALITY:
                raise ValueError(
                    "The training dataset is infinite, so the full gradient "
                    f"cannot be computed over it. {how}"
                )
            check_finite_dataset(x, "x")
            return x
        if not _array_like(x):
            raise ValueError(
                "VarianceReduced.fit cannot derive the full-gradient data from "
                f"x of type {type(x).__name__}. {how}"
            )
        parts = [x]
        for key in ("y", "sample_weight"):
            if arguments.get(key) is not None:
                parts.append(arguments[key])
        split = arguments.get("validation_split") or 0.0
        if split:
            count = int(np.shape(keras.tree.flatten(x)[0])[0])
            keep = int(math.floor(count * (1.0 - split)))
            parts = keras.tree.map_structure(lambda a: a[:keep], parts)
        data = tf.data.Dataset.from_tensor_slices(tuple(parts))
        return data.batch(arguments.get("batch_size") or 32)

    # --------------------------------------------------------- serialization
    def get_compile_config(self) -> dict[str, Any]:
        if self.compiled and hasattr(self, "_compile_config"):
            return self._compile_config.serialize()
        return {}

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Re-compiles from a `.keras` file (the optimizer state loads next)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model": keras.saving.serialize_keras_object(self.inner),
        }
