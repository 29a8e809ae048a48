"""`ElasticNetProximal`: the base of the FOBOS optimizers (ProximalSGD, ProximalAdagrad)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tf_lowprec import validation
from tf_lowprec.ops.prox import prox_elastic_net
from tf_lowprec.optimizers import _sparse
from tf_lowprec.optimizers.aggregated_clipping import AggregatedClippingMixin
from tf_lowprec.optimizers.learning_rate import LearningRate
from tf_lowprec.optimizers.step_arguments import CurrentLearningRate, Gradient


class ElasticNetProximal(AggregatedClippingMixin, keras.optimizers.Optimizer):
    """A gradient step followed by the proximal map of an elastic-net penalty.

    The penalty is `l1 * ||w||_1 + (l2 / 2) * ||w||_2^2` with `l1 =
    l1_regularization_strength`, `l2 = l2_regularization_strength`. Each
    step takes `p = w - eta * g` and applies the proximal map at the same
    step size `eta`:

    ```
    w = sign(p) * max(|p| - eta * l1, 0) / (1 + eta * l2)
    ```

    `eta` is the learning rate (ProximalSGD); a subclass with per-coordinate
    step sizes names the slots they read (`_slots`) and computes `eta` and
    the slots' new values (`_step_size`), as ProximalAdagrad does.

    What the subclasses share lives here: validation of the learning rate,
    the strengths and Keras's base optimizer arguments (taken as `**kwargs`
    and forwarded to `keras.optimizers.Optimizer`), `update_step` (one path
    for dense and sparse gradients: a `tf.IndexedSlices` updates only the
    rows it touches, after summing duplicate indices, TF1 behaviour), the
    proximal map, and the strengths in `get_config`; clipping of the
    all-reduced gradient under `tf.distribute` comes from
    `AggregatedClippingMixin`.
    """

    def __init__(
        self,
        learning_rate: LearningRate,
        l1_regularization_strength: float,
        l2_regularization_strength: float,
        **kwargs: Any,
    ) -> None:
        learning_rate = validation.learning_rate(learning_rate)
        validation.optimizer_common_args(**kwargs)
        l1_regularization_strength = validation.non_negative_float(
            l1_regularization_strength, "l1_regularization_strength"
        )
        l2_regularization_strength = validation.non_negative_float(
            l2_regularization_strength, "l2_regularization_strength"
        )
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength

    def update_step(
        self, gradient: Gradient, variable: keras.Variable, learning_rate: CurrentLearningRate
    ) -> None:
        """Proximal step on `variable` (and its slots), row-wise for sparse gradients."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        slots = self._slots(variable)
        indices, g, (w, *values) = _sparse.touched(gradient, variable, *slots)
        eta, new_values = self._step_size(lr, g, values)
        new_w = self._prox(ops.subtract(w, ops.multiply(g, eta)), eta, dtype)
        for slot, value in zip(slots, new_values):
            _sparse.assign_touched(self, slot, value, indices)
        _sparse.assign_touched(self, variable, new_w, indices)

    def _slots(self, variable):
        """The optimizer variables of `variable` that a step reads and writes."""
        return []

    def _step_size(self, lr, g, values):
        """`(eta, new slot values)` for the (touched) gradient `g`: here `(lr, [])`.

        `values` are the slots of `_slots` at the touched rows (or whole).
        """
        return lr, []

    def _prox(self, p, step_size, dtype):
        """`prox_elastic_net(p, step_size * l1, step_size * l2)`."""
        # Zero strengths stay Python 0s, so prox_elastic_net skips them.
        l1, l2 = self.l1_regularization_strength, self.l2_regularization_strength
        if l1:
            l1 = ops.multiply(step_size, ops.convert_to_tensor(l1, dtype))
        if l2:
            l2 = ops.multiply(step_size, ops.convert_to_tensor(l2, dtype))
        return prox_elastic_net(p, l1, l2)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
            }
        )
        return config
