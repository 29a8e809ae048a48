"""PruningWrapper: the layer wrapper that owns pruning masks.

Mechanism (shared by magnitude and filter pruning):

* the wrapper holds one non-trainable mask variable per pruned group, saved
  with the model like any weight (so `.keras` files resume mid-schedule);
* at build time it sets a *variable constraint* `w <- w * mask` on each
  pruned variable of the wrapped layer. Keras 3 optimizers apply variable
  constraints right after every update (`Optimizer.apply`), inside the same
  compiled (tf.function / XLA) training step, so the stored weights are
  exactly sparse after every step and the forward pass needs no extra work;
* masks change only in `update_masks` (driven by the `UpdatePruningStep`
  callback between steps, eagerly, in cross-replica context), which also
  zeroes the newly pruned weights. The training step itself has no
  `ops.cond` and no Python-side state.

The wrapped layer's own constraint, if any, is kept and applied first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from tf_lowprec.pruning.schedules import PruningSchedule

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike

_CALLBACK_MISSING = (
    "Layer `{name}` is pruned but no mask updater is attached. Add "
    "`tf_lowprec.pruning.UpdatePruningStep()` to the callbacks of `fit`, or, in a "
    "custom training loop, call `tf_lowprec.pruning.update_masks(model, step)` "
    "before each step. (Training-mode calls are refused without it, as masks "
    "would silently never change.)"
)


class MaskConstraint(keras.constraints.Constraint):
    """Variable constraint `w <- inner(w) * mask`, mask broadcast on the last axis.

    Installed by `PruningWrapper` on the variables it prunes; not meant to be
    passed to layers by hand (it references the wrapper's mask variable, which
    a layer config cannot carry).

    Args:
        mask: The mask variable (same shape as the weight, or the length of
            its last axis).
        inner: The constraint the variable had before, or `None`.
    """

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return w * ops.cast(self.mask, w.dtype)


class PruningWrapper(keras.layers.Wrapper):
    """Base class of the pruning wrappers: masks, constraints and updates.

    Subclasses define which variables are pruned in which groups
    (`_mask_groups`) and how a group's mask is computed (`_compute_mask`).

    Args:
        layer: The `keras.layers.Layer` to prune (unbuilt or built).
        pruning_schedule: A `PruningSchedule` (or its serialized dict) saying
            when masks are recomputed and at which sparsity.
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).
    """

    _name_prefix = "pruned"

    def __init__(
        self,
        layer: keras.layers.Layer,
        pruning_schedule: PruningSchedule | dict[str, Any],
        **kwargs: Any,
    ) -> None:
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"`layer` must be a keras.layers.Layer. Received: layer={layer!r}"
            )
        if isinstance(pruning_schedule, dict):
            pruning_schedule = keras.saving.deserialize_keras_object(pruning_schedule)
        if not isinstance(pruning_schedule, PruningSchedule):
            raise ValueError(
                "`pruning_schedule` must be a tf_lowprec.pruning PruningSchedule. "
                f"Received: pruning_schedule={pruning_schedule!r}"
            )
        kwargs.setdefault("name", f"{self._name_prefix}_{layer.name}")
        super().__init__(layer, **kwargs)
        self.pruning_schedule = pruning_schedule
        self.mask_updates_attached = False
        self._groups = []

    # -- what subclasses define -------------------------------------------------

    def _mask_groups(self):
        """`[(mask_name, mask_shape, [variables])]` once the layer is built."""
        raise NotImplementedError

    def _compute_mask(self, index, sparsity):
        """New mask of group `index` at `sparsity` from the current weights."""
        raise NotImplementedError

    # -- Keras layer API --------------------------------------------------------

    def build(self, input_shape: tuple[int | None, ...] | None = None) -> None:
        super().build(input_shape)
        self._groups = []
        for mask_name, shape, variables in self._mask_groups():
            mask = self.add_weight(
                name=mask_name,
                shape=shape,
                initializer="ones",
                dtype=variables[0].dtype,
                trainable=False,
            )
            for variable in variables:
                variable.constraint = MaskConstraint(mask, variable.constraint)
            self._groups.append((mask, variables))
        self.built = True

    def call(self, inputs: tf.Tensor, training: bool | None = None, **kwargs: Any) -> tf.Tensor:
        if training and not self.mask_updates_attached:
            raise RuntimeError(_CALLBACK_MISSING.format(name=self.name))
        return self.layer(inputs, **kwargs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["pruning_schedule"] = keras.saving.serialize_keras_object(
            self.pruning_schedule
        )
        return config

    # -- masks ------------------------------------------------------------------

    @property
    def masks(self) -> list[keras.Variable]:
        """The mask variables, one per pruned group."""
        return [mask for mask, _ in self._groups]

    @property
    def pruned_variables(self) -> list[keras.Variable]:
        """The wrapped layer's variables that carry a mask constraint."""
        return [v for _, variables in self._groups for v in variables]

    def assign_masks(self, masks: Sequence[TensorLike]) -> None:
        """Sets the masks and zeroes the weights they remove."""
        for (mask, variables), new in zip(self._groups, masks, strict=True):
            mask.assign(ops.cast(new, mask.dtype))
            for variable in variables:
                variable.assign(variable * ops.cast(mask, variable.dtype))

    def update_masks(self, sparsity: float) -> None:
        """Recomputes every mask at `sparsity` from the current weights."""
        self.assign_masks([self._compute_mask(i, sparsity) for i in range(len(self._groups))])

    def apply_masks(self) -> None:
        """Zeroes the masked weights again (e.g. after `set_weights`)."""
        self.assign_masks(self.masks)

    def masked_weights(self) -> list[np.ndarray]:
        """The wrapped layer's weights as numpy arrays with the masks applied.

        Masked entries are `+0.0` (not `-0.0`), which keeps exported files
        small.
        """
        masked = {}
        for mask, variables in self._groups:
            mask_value = ops.convert_to_numpy(mask)
            for variable in variables:
                value = ops.convert_to_numpy(variable)
                full = np.broadcast_to(mask_value, value.shape)
                masked[id(variable)] = np.where(full != 0, value, np.zeros_like(value))
        return [
            masked.get(id(v), ops.convert_to_numpy(v)) for v in self.layer.weights
        ]
