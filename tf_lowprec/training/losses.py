"""Losses by name for optimizer/loss sweeps, usable with integer labels.

`get_loss(name, **kwargs)` returns a `keras.losses.Loss` that takes
**integer class labels** (shape `(batch,)` or `(batch, 1)`) and **logits**
(shape `(batch, num_classes)`), which is what `tf_lowprec.models` output and
what the sweeps train on. Pass `sparse_labels=False` for one-hot targets.

Names, the loss behind each, and how it meets `C`-class logits:

- `sparse_softmax_cross_entropy`: `keras.losses.SparseCategoricalCrossentropy`
  on the integer labels as they are.
- `softmax_cross_entropy`: `keras.losses.CategoricalCrossentropy` on one-hot
  encoded labels (same value; also takes `label_smoothing`).
- `sigmoid_cross_entropy`: `keras.losses.BinaryCrossentropy`: `C`
  one-vs-rest sigmoid problems on the one-hot labels, mean over classes.
- `weighted_cross_entropy`: `WeightedBinaryCrossentropy(pos_weight)`, the
  same one-vs-rest set-up with the positive class weighted.
- `sigmoid_focal_cross_entropy`: `SigmoidFocalCrossentropy(alpha, gamma)`,
  one-vs-rest, summed over classes (TFA's definition).
- `weighted_kappa`: `WeightedKappaLoss(weightage)` between the softmax of
  the logits and the one-hot labels (a batch-level loss).

Every name defaults to `from_logits=True` (where the loss has that argument).
Keras built-ins are used where they compute the same thing; the three classes
below fill the gaps TensorFlow Addons left (it does not run on Keras 3):

- `WeightedBinaryCrossentropy` is `tf.nn.weighted_cross_entropy_with_logits`
  averaged over the last axis (Keras has no `pos_weight`).
- `SigmoidFocalCrossentropy` is TFA's definition. Keras'
  `BinaryFocalCrossentropy(apply_class_balancing=True)` differs in two ways:
  it averages over the last axis where TFA sums (a factor `num_classes`), and
  with `from_logits=True` it clips `sigmoid(logits)` to `[1e-7, 1 - 1e-7]`,
  so confidently wrong logits (`|x| > ~16`) get a flat loss and zero
  gradient; here the cross-entropy is the stable log-sigmoid form.
- `WeightedKappaLoss` is TFA's `WeightedKappaLoss` (Keras has none).

`IntegerLabels(loss)` is the adapter that one-hot encodes integer labels to
the width of `y_pred` before calling a loss that wants one-hot targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from tf_lowprec import validation
from tf_lowprec.optimizers.registry import check_keywords, lookup_key

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike


@keras.saving.register_keras_serializable(package="tf_lowprec")
class IntegerLabels(keras.losses.Loss):
    """Feeds integer class labels to a loss that expects one-hot targets.

    `y_true` of shape `(batch,)` or `(batch, 1)` is one-hot encoded to
    `y_pred.shape[-1]` classes, then `loss.call(one_hot, y_pred)` gives the
    per-sample values; this wrapper's own `reduction` (taken from `loss` by
    default) and `sample_weight` apply to them.

    Args:
        loss: A `keras.losses.Loss` that takes one-hot `y_true`.
        reduction: Reduction over samples. Defaults to `loss.reduction`.
        name: Defaults to `loss.name`.
        dtype: Defaults to `None` (the global float policy).

    Example:

    >>> loss = IntegerLabels(keras.losses.CategoricalCrossentropy(True))
    >>> float(loss([2], [[0.0, 0.0, 10.0]])) < 1e-3
    True
    """

    def __init__(
        self,
        loss: keras.losses.Loss | dict[str, Any],
        reduction: str | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        if isinstance(loss, dict):
            loss = keras.losses.deserialize(loss)
        if not isinstance(loss, keras.losses.Loss):
            raise ValueError(
                "`loss` must be a keras.losses.Loss instance. "
                f"Received: loss={loss!r}."
            )
        super().__init__(
            name=name or loss.name,
            reduction=reduction or loss.reduction,
            dtype=dtype,
        )
        self.loss = loss

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> tf.Tensor:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        one_hot = ops.one_hot(
            ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype
        )
        return self.loss.call(one_hot, y_pred)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["loss"] = keras.losses.serialize(self.loss)
        return config


class _HyperparameterLoss(keras.losses.Loss):
    """A loss whose hyperparameters are attributes named like its arguments.

    `get_config` is Keras's (`name`, `reduction`, `dtype`) plus the
    attributes named in `_hyperparameters`, in that order; `from_config`
    passes them back to the constructor.
    """

    _hyperparameters: tuple[str, ...] = ()

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self._hyperparameters})
        return config


@keras.saving.register_keras_serializable(package="tf_lowprec")
class WeightedBinaryCrossentropy(_HyperparameterLoss):
    """Sigmoid cross-entropy with positives weighted by `pos_weight`.

    Per element, with logit `x`, target `z` and `q = pos_weight`:

    ```
    l = q * z * -log(sigmoid(x)) + (1 - z) * -log(1 - sigmoid(x))
      = (1 - z) * x + (1 + (q - 1) * z) * (log(1 + exp(-|x|)) + max(-x, 0))
    ```

    (the second, overflow-free form is the one computed), which is
    `tf.nn.weighted_cross_entropy_with_logits`; the loss per sample is its
    mean over the last axis, like `keras.losses.BinaryCrossentropy`.
    `pos_weight > 1` raises recall, `< 1` precision. For `C` one-vs-rest
    classes with one positive each, `pos_weight = C - 1` balances the two.
    Takes logits only (as the TensorFlow op does).

    Args:
        pos_weight: A float > 0, the weight of positive targets.
            Defaults to `1.0` (plain sigmoid cross-entropy).
        reduction: Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"weighted_binary_crossentropy"`.
        dtype: Defaults to `None` (the global float policy).
    """

    _hyperparameters = ("pos_weight",)

    def __init__(
        self,
        pos_weight: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_binary_crossentropy",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.pos_weight = validation.positive_float(pos_weight, "pos_weight")

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> tf.Tensor:
        x = ops.convert_to_tensor(y_pred)
        z = ops.cast(y_true, x.dtype)
        q = ops.convert_to_tensor(self.pos_weight, x.dtype)
        log_weight = ops.add(1.0, ops.multiply(ops.subtract(q, 1.0), z))
        softplus_neg = ops.add(
            ops.log1p(ops.exp(ops.negative(ops.abs(x)))), ops.relu(-x)
        )
        elementwise = ops.add(
            ops.multiply(ops.subtract(1.0, z), x),
            ops.multiply(log_weight, softplus_neg),
        )
        return ops.mean(elementwise, axis=-1)



@keras.saving.register_keras_serializable(package="tf_lowprec")
class SigmoidFocalCrossentropy(_HyperparameterLoss):
    """Focal loss (Lin et al., 2017) over independent sigmoid outputs.

    Per element, with `p = sigmoid(x)` (or `x` itself if
    `from_logits=False`) and target `z`:

    ```
    p_t = z * p + (1 - z) * (1 - p)
    a_t = z * alpha + (1 - z) * (1 - alpha)        # 1 if alpha is None
    l   = a_t * (1 - p_t)^gamma * CE(z, x)
    ```

    summed over the last axis, as TensorFlow Addons' `SigmoidFocalCrossEntropy`
    defined it. `CE` is the sigmoid cross-entropy, computed from logits in
    the stable log-sigmoid form (no probability clipping). `gamma=0` and
    `alpha=None` give plain sigmoid cross-entropy summed over the last axis.
    (TFA also disabled balancing for `alpha=0`; here `alpha=0` is literal.)

    Args:
        alpha: Balancing weight of positives in `[0, 1]`, or `None` for no
            balancing. Defaults to `0.25`.
        gamma: Focusing exponent, >= 0. Defaults to `2.0`.
        from_logits: Whether `y_pred` holds logits. Defaults to `False`
            (TFA's default; `get_loss` passes `True`).
        reduction: Defaults to `"sum_over_batch_size"`.
        name: Defaults to `"sigmoid_focal_crossentropy"`.
        dtype: Defaults to `None` (the global float policy).

    References:

    - [Lin et al., 2017](https://arxiv.org/abs/1708.02002), "Focal loss for
      dense object detection".
    """

    _hyperparameters = ("alpha", "gamma", "from_logits")

    def __init__(
        self,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sigmoid_focal_crossentropy",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = validation.optional(validation.float_in_range, alpha, "alpha", 0.0, 1.0)
        self.gamma = validation.non_negative_float(gamma, "gamma")
        self.from_logits = validation.boolean(from_logits, "from_logits")

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> tf.Tensor:
        y_pred = ops.convert_to_tensor(y_pred)
        z = ops.cast(y_true, y_pred.dtype)
        ce = ops.binary_crossentropy(z, y_pred, from_logits=self.from_logits)
        p = ops.sigmoid(y_pred) if self.from_logits else y_pred
        p_t = ops.add(ops.multiply(z, p), ops.multiply(1.0 - z, 1.0 - p))
        gamma = ops.convert_to_tensor(self.gamma, y_pred.dtype)
        loss = ops.multiply(ops.power(ops.subtract(1.0, p_t), gamma), ce)
        if self.alpha is not None:
            a = ops.convert_to_tensor(self.alpha, y_pred.dtype)
            a_t = ops.add(ops.multiply(z, a), ops.multiply(1.0 - z, 1.0 - a))
            loss = ops.multiply(a_t, loss)
        return ops.sum(loss, axis=-1)



@keras.saving.register_keras_serializable(package="tf_lowprec")
class WeightedKappaLoss(_HyperparameterLoss):
    """Weighted-kappa loss for ordinal classes (de la Torre et al., 2018).

    For one-hot targets `Y` (`N x C`), class probabilities `P` (`N x C`) and
    the disagreement weights `w_ij = |i - j|` (`"linear"`) or `(i - j)^2`
    (`"quadratic"`):

    ```
    numerator   = sum_n sum_j w(label_n, j) * P_nj
    denominator = (1 / N) * sum_ij (sum_n Y_ni) * w_ij * (sum_n P_nj)
    loss        = log(numerator / denominator + epsilon)     # 0/0 -> 0
    ```

    i.e. `log(1 - kappa + epsilon)`, in `[log(epsilon), log 2]`; lower is
    better. This is TensorFlow Addons' `WeightedKappaLoss`. It is a
    **batch-level** loss: `call` returns one scalar for the batch, so
    `sample_weight` only rescales it (by its mean) and the batch must be big
    enough to estimate the label and prediction marginals.

    Args:
        num_classes: Number of classes, or `None` to take it from
            `y_pred.shape[-1]`. Defaults to `None`.
        weightage: `"linear"` or `"quadratic"`. Defaults to `"quadratic"`.
        epsilon: Added before the log. Defaults to `1e-6`.
        from_logits: Whether `y_pred` holds logits (softmax is applied) or
            probabilities. Defaults to `False` (TFA's convention; `get_loss`
            passes `True`).
        reduction: Defaults to `"sum_over_batch_size"` (a no-op on the
            scalar).
        name: Defaults to `"weighted_kappa_loss"`.
        dtype: Defaults to `None` (the global float policy).

    References:

    - [de la Torre, Puig & Valls, 2018](
        https://doi.org/10.1016/j.patrec.2017.05.018), "Weighted kappa loss
        function for multi-class classification of ordinal data in deep
        learning".
    """

    _hyperparameters = ("num_classes", "weightage", "epsilon", "from_logits")

    def __init__(
        self,
        num_classes: int | None = None,
        weightage: str = "quadratic",
        epsilon: float = 1e-6,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_kappa_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.weightage = validation.choice(weightage, "weightage", ("linear", "quadratic"))
        self.num_classes = validation.optional(
            validation.integer, num_classes, "num_classes", minimum=2
        )
        self.epsilon = validation.non_negative_float(epsilon, "epsilon")
        self.from_logits = validation.boolean(from_logits, "from_logits")

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> tf.Tensor:
        y_pred = ops.convert_to_tensor(y_pred)
        num_classes = self.num_classes or y_pred.shape[-1]
        probs = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        y_true = ops.cast(y_true, probs.dtype)
        classes = ops.arange(num_classes, dtype=probs.dtype)
        diff = ops.subtract(classes[:, None], classes[None, :])
        if self.weightage == "linear":
            weights = ops.abs(diff)
        else:
            weights = ops.square(diff)
        # y_true @ weights picks row w(label_n, :) for each sample.
        numerator = ops.sum(ops.multiply(ops.matmul(y_true, weights), probs))
        label_counts = ops.sum(y_true, axis=0)
        pred_counts = ops.sum(probs, axis=0)
        expected = ops.sum(
            ops.multiply(
                ops.matmul(label_counts[None, :], weights), pred_counts[None, :]
            )
        )
        batch_size = ops.cast(ops.shape(probs)[0], probs.dtype)
        denominator = ops.divide(expected, batch_size)
        ratio = ops.divide_no_nan(numerator, denominator)
        return ops.log(ops.add(ratio, self.epsilon))



# name -> (factory, takes integer labels natively)
_LOSSES = {
    "sparse_softmax_cross_entropy": (
        keras.losses.SparseCategoricalCrossentropy,
        True,
    ),
    "softmax_cross_entropy": (keras.losses.CategoricalCrossentropy, False),
    "sigmoid_cross_entropy": (keras.losses.BinaryCrossentropy, False),
    "weighted_cross_entropy": (WeightedBinaryCrossentropy, False),
    "sigmoid_focal_cross_entropy": (SigmoidFocalCrossentropy, False),
    "weighted_kappa": (WeightedKappaLoss, False),
}


def available_losses() -> list[str]:
    """Sorted list of the names `get_loss` accepts."""
    return sorted(_LOSSES)


def get_loss(name: str, sparse_labels: bool = True, **kwargs: Any) -> keras.losses.Loss:
    """Builds a named loss for logits and (by default) integer labels.

    Args:
        name: One of `available_losses()`; case-insensitive, `-` equals `_`.
        sparse_labels: Whether targets are integer class labels (wrapped in
            `IntegerLabels` where the loss wants one-hot targets). `False`
            returns the bare loss for one-hot targets. Defaults to `True`.
        **kwargs: Constructor arguments of the loss (e.g. `pos_weight`,
            `alpha`, `gamma`, `weightage`, `reduction`). `from_logits`
            defaults to `True` wherever the loss takes it.

    Returns:
        A `keras.losses.Loss`.

    Raises:
        ValueError: for an unknown name (listing the valid ones) or an
            argument the loss does not take.
    """
    key = lookup_key("loss", _LOSSES, name)
    factory, takes_integer_labels = _LOSSES[key]
    accepted = check_keywords("Loss", key, factory, kwargs) or ()
    if "from_logits" in accepted:
        kwargs.setdefault("from_logits", True)
    loss = factory(**kwargs)
    if sparse_labels and not takes_integer_labels:
        loss = IntegerLabels(loss)
    return loss
