"""Optimizer slots that start as a copy of their model variable.

gRDA's dual accumulator and a wrapper's full-precision accumulator start at
the weights (`acc_0 = w_0`). Keras builds an optimizer on its first `apply`,
which runs inside the traced train function when the model itself was built
there (`keras.Sequential([keras.layers.Dense(2)])` without an `Input`). The
model variable is then created in that same trace and only receives its
value when the function first runs, so copying it eagerly at build time
(`tf.init_scope(): slot.assign(variable)`) reads an empty tensor. Making the
copy the slot's *initializer* puts it where TensorFlow initialises every
variable created in a trace: after the model variable's own initializer, in
the first run of the function. A model variable that already has a value is
copied at once (eagerly), which keeps the slot creation liftable out of an
XLA-compiled train function (`jit_compile=True`).
"""

import keras
import tensorflow as tf


def _value_of(variable):
    """An initializer `(shape, dtype) -> tensor` returning `variable`'s value.

    A variable that already has a value is copied eagerly (a constant that
    TensorFlow can lift out of any trace, as XLA requires); one created in
    the current trace is read in the trace.
    """

    def initializer(shape, dtype=None):
        value = variable.value if isinstance(variable, keras.Variable) else variable
        dtype = dtype or value.dtype
        with tf.init_scope():
            if bool(value.is_initialized()):
                return tf.cast(tf.identity(value), dtype)
        return tf.cast(tf.identity(value), dtype)

    return initializer


def add_copy_slots(optimizer, var_list, name):
    """One slot per variable, initialised to the variable's current value.

    Like `Optimizer.add_optimizer_variables`, returns `None` for variables
    with `overwrite_with_gradient` (float8 scales and amax histories), which
    Keras overwrites with their gradient and never passes to `update_step`.

    Args:
        optimizer: the `keras.optimizers.Optimizer` that owns the slots.
        var_list: the model variables.
        name: slot name suffix (`"{variable path}_{name}"`).

    Returns:
        A list of `keras.Variable`s (or `None`s), one per variable.
    """
    return [
        None
        if getattr(variable, "overwrite_with_gradient", False)
        else optimizer.add_variable_from_reference(
            variable, name, initializer=_value_of(variable)
        )
        for variable in var_list
    ]
