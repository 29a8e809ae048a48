"""`WrapperOptimizer`: the base of optimizers that wrap an inner Keras optimizer.

`LowPrecision` and `SWA` add state or hooks around another optimizer that
does the actual update. What they share lives here:

* construction: the inner optimizer (an instance or its serialized dict),
  no base-optimizer arguments of their own (learning rate, clipping, weight
  decay, EMA, loss scaling are the inner optimizer's); for the wrappers that
  round per variable, the check that the inner optimizer has its own
  `update_step` and the stochastic-rounding seed;
* delegation: `iterations`, `learning_rate` and `scale_loss` are the inner
  optimizer's; `variables` are the wrapper's own followed by the inner
  optimizer's;
* `apply`: builds the wrapper on first use, then `_apply_inner`;
* variable lookup with a clear error for variables the wrapper was not built
  on (e.g. one wrapper reused for a second model);
* `get_config` / `from_config`: the inner optimizer serialized under
  `"optimizer"`, plus `_wrapper_config()` (`from_config` comes from
  `WrapsOneObject`, which `VarianceReduced` uses for its model too).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import keras
from keras.src.utils.naming import auto_name

from tf_lowprec import validation

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike

    from tf_lowprec.optimizers.learning_rate import LearningRate


def slot_prefix(variable: keras.Variable) -> str:
    """The name prefix Keras gives a slot made from `variable`.

    `Optimizer.add_variable_from_reference` names a slot
    `{variable.path with "/" -> "_"}_{slot}`, or from the name for a raw
    `tf.Variable` (which has no `path`).
    """
    if hasattr(variable, "path"):
        return variable.path.replace("/", "_")
    return str(variable.name).replace("/", "_").replace(":", "_")


class WrapsOneObject:
    """Mixin: `from_config` of a wrapper around one Keras object.

    The wrapped object (an optimizer, a model) is serialized under the
    class's `_wrapped_key` and passed to `cls` first; the other entries of
    the config are keyword arguments: `cls(inner, **rest)`. Used by
    `WrapperOptimizer` (`"optimizer"`) and `tf_lowprec.training.VarianceReduced`
    (`"model"`); list it before the Keras base class.
    """

    _wrapped_key: str

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Self:
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop(cls._wrapped_key), custom_objects=custom_objects
        )
        return cls(inner, **config)


class Untracked:
    """References that Keras's and TF's attribute trackers must not follow
    (lists of model variables would otherwise become optimizer variables)."""

    def __init__(self, **items: Any) -> None:
        self.__dict__.update(items)


class WrapperOptimizer(WrapsOneObject, keras.optimizers.Optimizer):
    """Base class: an optimizer whose update is an inner optimizer's.

    Subclasses name their automatic-name prefix in `_default_name`, call
    `super().__init__(optimizer, name=..., **kwargs)`, keep their own variables in `self._variables` (via
    `add_variable`), implement `build` (calling `super().build(var_list)`
    first) and may override `_apply_inner(grads, trainable_variables)`,
    `finalize_variable_values` and `_wrapper_config()`.
    """

    _wrapped_key = "optimizer"  # `from_config`: the inner optimizer (`WrapsOneObject`)
    _default_name: str | None = None  # automatic names `<it>`, `<it>_1`, ...; None: class name

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        cls_name = type(self).__name__
        if kwargs:
            raise ValueError(
                f"{cls_name} takes no base optimizer arguments (set learning "
                "rate, clipping, weight decay, EMA, ... on the inner "
                f"optimizer). Received: {sorted(kwargs)}"
            )
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise ValueError(  # noqa: TRY004 (project rule: bad input -> ValueError)
                "`optimizer` must be a keras.optimizers.Optimizer. "
                f"Received: optimizer={optimizer!r}"
            )
        # Keras-style automatic names: `swa`, `swa_1`, ... (as `adam`, `adam_1`).
        super().__init__(
            learning_rate=0.0, name=name or auto_name(self._default_name or cls_name)
        )
        self.inner_optimizer = optimizer

    def _require_inner_update_step(self, hint=""):
        """Raises unless the inner optimizer defines its own per-variable `update_step`.

        Wrappers that quantize or round each variable's update (`LowPrecision`,
        `StochasticRounding`) run it variable by variable; a wrapper such as
        `LossScaleOptimizer` has none. `hint` is appended to "is a wrapper".
        """
        inner = self.inner_optimizer
        if type(inner).update_step is keras.optimizers.Optimizer.update_step:
            raise ValueError(
                "`optimizer` must define its own per-variable `update_step`; "
                f"{type(inner).__name__} is a wrapper{hint}. Received: "
                f"optimizer={inner!r}"
            )

    @staticmethod
    def _seed_or_random(seed):
        """`seed` checked (an int in `[0, 2^31)`), or one drawn from Python's
        `random` for `None` (reproducible after `keras.utils.set_random_seed`)."""
        seed = validation.seed(seed)
        if seed is None:
            seed = random.randrange(validation.SEED_LIMIT)
        return seed

    # ------------------------------------------------------------- delegation
    # The step counter, learning rate and loss scaling are the inner
    # optimizer's; `variables` are the wrapper's own followed by the inner's.

    @property
    def variables(self) -> list[keras.Variable]:
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self) -> keras.Variable | LearningRate:
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: LearningRate) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self) -> keras.Variable:
        return self.inner_optimizer.iterations

    def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
        return self.inner_optimizer.scale_loss(loss)

    @property
    def loss_scale_factor(self) -> float | None:
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: float | None) -> None:
        # `LossScaleOptimizer` sets it to None on the optimizer it wraps: the
        # inner optimizer, which unscales the gradients, must see that. (The
        # base constructor's assignment comes before `inner_optimizer` exists.)
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            inner.loss_scale_factor = value

    # ----------------------------------------------------------------- update

    def _variable_index(self, variable):
        """Position of `variable` in the list this wrapper was built on."""
        key = self._var_key(variable)
        if key not in self._trainable_variables_indices:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} was built for other "
                "variables (one wrapper optimizer serves one model; create a "
                "new one for each model). Received: variable "
                f"{getattr(variable, 'path', variable)!r}"
            )
        return self._trainable_variables_indices[key]

    def apply(
        self,
        grads: Sequence[TensorLike | tf.IndexedSlices | None],
        trainable_variables: Sequence[keras.Variable] | None = None,
    ) -> None:
        if not self.built:
            if trainable_variables is None:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer "
                    "must already be built on a list of variables."
                )
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
        elif trainable_variables is not None:
            for variable in trainable_variables:
                self._variable_index(variable)
        self._apply_inner(grads, trainable_variables)

    def _apply_inner(self, grads, trainable_variables):
        self.inner_optimizer.apply(grads, trainable_variables)

    def finalize_variable_values(self, var_list: Sequence[keras.Variable]) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def exclude_from_weight_decay(
        self,
        var_list: Sequence[keras.Variable] | None = None,
        var_names: Sequence[str] | None = None,
    ) -> None:
        """Forwarded to the inner optimizer, which applies the decay."""
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    # ------------------------------------------------------------------ state

    def set_weights(self, weights: Sequence[TensorLike]) -> None:
        """Sets every variable in `variables` (the wrapper's and the inner's)."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not "
                "yet been built. Please call `optimizer.build(trainable_variables)` "
                "to create the optimizer weights before calling `set_weights()`."
            )
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(
                f"{type(self).__name__} {self.name!r} has {len(variables)} "
                f"variables (its own and its inner optimizer's). Received: "
                f"{len(weights)} weights."
            )
        for variable, weight in zip(variables, weights):
            if tuple(variable.shape) != tuple(weight.shape):
                raise ValueError(
                    f"Optimizer variable {variable.path} has shape {variable.shape} "
                    f"not compatible with provided weight shape {weight.shape}."
                )
            variable.assign(weight)

    # ----------------------------------------------------------------- config

    def _wrapper_config(self):
        """The subclass's own constructor arguments (JSON-friendly)."""
        return {}

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            **self._wrapper_config(),
        }
