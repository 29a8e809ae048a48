"""`SWA`: an optimizer wrapper that holds a saved running average of the weights.

The state of stochastic weight averaging (Izmailov et al., 2018) lives in
the optimizer, because that is the state Keras saves with the model; when
to average, the learning-rate switch and the BatchNorm recompute are the
training loop's business (`tf_lowprec.training.StochasticWeightAveraging`,
`tf_lowprec.training.recompute_batchnorm_statistics`). See
`tf_lowprec/training/swa.py` for the whole picture.

References:
    - [Izmailov, Podoprikhin, Garipov, Vetrov, Wilson, "Averaging Weights
      Leads to Wider Optima and Better Generalization", UAI 2018](https://arxiv.org/abs/1803.05407).
    - TensorFlow Addons `tfa.optimizers.SWA`; PyTorch
      `torch.optim.swa_utils.AveragedModel`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_lowprec.optimizers.inner_optimizer import Untracked, WrapperOptimizer, slot_prefix


@keras.saving.register_keras_serializable(package="tf_lowprec")
class SWA(WrapperOptimizer):
    """Any Keras optimizer plus a saved, float32 running average of the weights.

    The wrapped optimizer does all the training; this wrapper only adds the
    state of stochastic weight averaging, so that it is saved and restored
    with the optimizer:

    ```
    average_i    (float32, shape of trainable variable i, starts at 0)
    num_averaged (int64, starts at 0)
    update_average():  average_i += (w_i - average_i) / (num_averaged + 1);
                       num_averaged += 1
    ```

    Averaging is driven from outside (`StochasticWeightAveraging`, or a call
    to `update_average()` in a custom loop), not at every step: it runs in
    cross-replica context, so under `tf.distribute` it updates every replica
    with the same values and needs no `cond` inside the train step.

    Args:
        optimizer: the `keras.optimizers.Optimizer` that trains the model
            (may itself be a wrapper such as `LowPrecision`).
        name: string. Defaults to `"swa"`.

    Example:

    ```python
    model.compile(optimizer=tf_lowprec.training.SWA(keras.optimizers.SGD(0.05, momentum=0.9)),
                  loss=..., metrics=["accuracy"])
    model.fit(train, epochs=30, callbacks=[
        tf_lowprec.training.StochasticWeightAveraging(start_epoch=20, swa_lr=0.01, data=train)])
    ```
    """

    _default_name = "swa"

    def build(self, var_list: list[keras.Variable]) -> None:
        """Creates the averages (float32) and the counter; builds the inner optimizer."""
        if self.built:
            return
        super().build(var_list)
        averages = []
        for variable in var_list:
            value = variable.value if isinstance(variable, keras.Variable) else variable
            with self._distribution_strategy.extended.colocate_vars_with(value):
                averages.append(
                    self.add_variable(
                        shape=variable.shape,
                        dtype="float32",
                        name=slot_prefix(variable) + "_swa_average",
                    )
                )
        self._averages = averages
        self._num_averaged = self.add_variable(
            shape=(), dtype="int64", name="swa_num_averaged"
        )
        self._refs = Untracked(model_variables=list(var_list))
        self.inner_optimizer.build(var_list)

    @property
    def averages(self) -> list[keras.Variable]:
        """The float32 running averages, one per trainable variable."""
        return list(self._averages)

    @property
    def averaged_variables(self) -> list[keras.Variable]:
        """The model variables the averages belong to (in the same order)."""
        return list(self._refs.model_variables)

    @property
    def num_averaged(self) -> int:
        """How many snapshots the average holds (an int)."""
        return int(self._num_averaged.numpy())

    def update_average(self) -> None:
        """Adds the current weights to the running average (cross-replica)."""
        n = tf.cast(self._num_averaged.value, tf.float32)
        for average, variable in zip(self._averages, self._refs.model_variables):
            avg = tf.convert_to_tensor(average.value)
            w = tf.cast(tf.convert_to_tensor(variable.value), tf.float32)
            average.assign(avg + (w - avg) / (n + 1.0))
        self._num_averaged.assign_add(1)

    def assign_average(self) -> None:
        """Writes the averages into the model variables (no BatchNorm update)."""
        for average, variable in zip(self._averages, self._refs.model_variables):
            variable.assign(tf.cast(tf.convert_to_tensor(average.value), variable.dtype))


def find_swa_optimizer(optimizer: keras.optimizers.Optimizer | None) -> SWA | None:
    """The `SWA` wrapper in a chain of wrappers (`inner_optimizer`), or None."""
    seen = set()
    while optimizer is not None and id(optimizer) not in seen:
        if isinstance(optimizer, SWA):
            return optimizer
        seen.add(id(optimizer))
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None
