"""Optimizer states stored as block-wise 8-bit codes, updated in one XLA kernel.

The mixin behind `SGD8bit`, `Adam8bit` and `AdamW8bit`. Each state of a
variable with at least `min_8bit_size` entries is two optimizer variables:

    {slot}_codes_{variable}    int8 (signed state) or uint8 (unsigned), the
                               variable's shape: 1 byte per entry
    {slot}_absmax_{variable}   float32 [ceil(size / block_size)]: the scales

(`tf_lowprec.ops.blockwise`). A smaller variable (biases, normalization
parameters) keeps a float32 state `{variable}_{slot}` as Keras's optimizers
do, like bitsandbytes' `min_8bit_size` (default 4096 there and here): its
memory is negligible and 8 bits would gain nothing.

Per variable and step, one `tf.function(jit_compile=True)` runs

    s      = dequantize(codes, absmax)          for each state
    s', dw = the float32 update rule(g, w, s)
    codes', absmax' = quantize(s')

and returns `dw` and the new codes and scales, which are assigned to the
variables. XLA fuses the three stages into loops over the tensor, so the
float32 states exist only as temporaries of that kernel: between steps
only codes and scales are stored. The weight is updated with the float32
`s'` (not with its quantized value), as bitsandbytes does; the rounding
error of the stored state enters the next step only. Rounding is nearest
(deterministic), so replicas under `tf.distribute` that see the same
all-reduced gradient store the same codes, and a run resumed from a
`.keras` file continues bit for bit.

The weight update is applied with the optimizer's `assign_add` /
`assign_sub`, so wrappers that intercept them (`StochasticRounding`, for
bfloat16 weights) see the float32 step. Sparse gradients are densified.
"""

import functools
import numbers

import keras
import tensorflow as tf

from tf_lowprec.ops.blockwise import (
    as_blocks,
    check_block_size,
    dequantize_blocks,
    from_blocks,
    quantize_blocks,
)
from tf_lowprec.optimizers.inner_optimizer import Untracked, slot_prefix

CODES = "codes"
# Blocks per step of the update loop: 4096 x 256 = 1M entries, i.e. 4 MiB
# float32 temporaries per state (see `_run_in_chunks`).
CHUNK_BLOCKS = 4096
ABSMAX = "absmax"


def check_min_8bit_size(value):
    """Raises `ValueError` unless `value` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`min_8bit_size` must be an int >= 0. Received: min_8bit_size={value!r}"
        )


def _run_in_chunks(rule, layout, block_size, gradient, weight, scalars, stored):
    """The fused step on `[n_blocks, block_size]` views, `CHUNK_BLOCKS` rows at a time.

    Every chunk dequantizes its rows of each state, applies `rule` and
    requantizes them; the results are scattered into the outputs, so the
    float32 temporaries of XLA are chunk-sized, not variable-sized. The
    last chunk is shifted back to end at the last block (rows it shares with
    the previous chunk are recomputed from the same inputs, identically).
    """
    shape = gradient.shape
    gradient = tf.cast(gradient, tf.float32)  # inside the kernel: fused, no copy
    weight = tf.cast(weight, tf.float32)
    g, w = as_blocks(gradient, block_size), as_blocks(weight, block_size)
    inputs, position = [], 0
    for eight_bit, _ in layout:
        if eight_bit:
            inputs.append(
                (as_blocks(stored[position], block_size), stored[position + 1])
            )
            position += 2
        else:
            inputs.append((as_blocks(stored[position], block_size),))
            position += 1
    n = g.shape[0]
    rows = min(CHUNK_BLOCKS, n)

    def chunk(start):
        def take(t):
            begin = [start] + [0] * (t.shape.rank - 1)
            return tf.slice(t, begin, [rows] + t.shape.as_list()[1:])

        decoded = [
            dequantize_blocks(take(s[0]), take(s[1])) if len(s) == 2 else take(s[0])
            for s in inputs
        ]
        step, new_states = rule(take(g), take(w), scalars, decoded)
        encoded = []
        for (eight_bit, signed), state in zip(layout, new_states):
            encoded.extend(quantize_blocks(state, signed) if eight_bit else [state])
        return [step, *encoded]

    if rows == n:
        outputs = chunk(0)
    else:
        first = chunk(0)  # shapes and dtypes of the per-chunk results
        empty = [tf.zeros([n, *t.shape.as_list()[1:]], t.dtype) for t in first]
        count = -(-n // rows)

        def body(i, *outputs):
            start = tf.minimum(i * rows, n - rows)
            index = (start + tf.range(rows))[:, None]
            return (
                i + 1,
                *(
                    tf.tensor_scatter_nd_update(out, index, part)
                    for out, part in zip(outputs, chunk(start))
                ),
            )

        outputs = tf.while_loop(
            lambda i, *_: i < count, body, [tf.constant(0), *empty]
        )[1:]
    step, encoded, position = outputs[0], [], 1
    for eight_bit, _ in layout:
        if eight_bit:
            encoded += [from_blocks(outputs[position], shape), outputs[position + 1]]
            position += 2
        else:
            encoded.append(from_blocks(outputs[position], shape))
            position += 1
    return from_blocks(step, shape), encoded


class State:
    """One state of one variable: `codes` + `absmax`, or a float32 `value`."""

    def __init__(self, signed, codes=None, absmax=None, value=None):
        self.signed = signed
        self.codes, self.absmax, self.value = codes, absmax, value

    @property
    def eight_bit(self):
        return self.codes is not None

    def stored(self):
        """The variables that hold this state."""
        return [self.codes, self.absmax] if self.eight_bit else [self.value]


class BlockwiseStates:
    """Mixin for a `keras.optimizers.Optimizer` whose states are 8-bit.

    Call `_init_blockwise(block_size, min_8bit_size)` in `__init__`, create
    states with `_add_state` in `build`, and run the update with
    `_fused_update(variable, gradient, rule, states, scalars)`.
    """

    def _init_blockwise(self, block_size, min_8bit_size):
        check_block_size(block_size)
        check_min_8bit_size(min_8bit_size)
        self.block_size = int(block_size)
        self.min_8bit_size = int(min_8bit_size)
        self._blockwise = Untracked(kernels={}, previous=None)

    def _check_variables(self, variables):
        for variable in variables:
            if not keras.backend.is_float_dtype(variable.dtype):
                raise ValueError(
                    f"{type(self).__name__} updates floating-point variables only. "
                    f"Received: var_list with {getattr(variable, 'path', variable.name)!r} of "
                    f"dtype={variable.dtype}"
                )

    def _add_state(self, variable, slot, signed):
        """A `State` for `variable`: 8-bit if it has >= `min_8bit_size` entries."""
        size = 1
        for dim in variable.shape:
            size *= int(dim)
        reference = slot_prefix(variable)
        if size < max(self.min_8bit_size, 1):
            # Named like Keras's own slots, so LowPrecision finds it.
            value = self.add_variable(
                variable.shape, "zeros", "float32", name=f"{reference}_{slot}"
            )
            return State(signed, value=value)
        # Zero codes are zero states for both tables.
        codes = self.add_variable(
            variable.shape,
            "zeros",
            "int8" if signed else "uint8",
            name=f"{slot}_{CODES}_{reference}",
        )
        n_blocks = -(-size // self.block_size)
        absmax = self.add_variable(
            (n_blocks,), "zeros", "float32", name=f"{slot}_{ABSMAX}_{reference}"
        )
        return State(signed, codes=codes, absmax=absmax)

    def _kernel(self, variable, rule, states):
        # One compiled kernel per shape and state layout (not per variable):
        # variables of the same shape share a trace and an XLA compilation.
        layout = tuple((s.eight_bit, s.signed) for s in states)
        key = (tuple(variable.shape), layout)
        kernel = self._blockwise.kernels.get(key)
        if kernel is None:
            kernel = tf.function(
                functools.partial(_run_in_chunks, rule, layout, self.block_size),
                jit_compile=True,
                autograph=False,
            )
            self._blockwise.kernels[key] = kernel
        return kernel

    def _fused_update(self, variable, gradient, rule, states, scalars):
        """Runs `rule` in float32 on the dequantized states; stores the result.

        `rule(g, w, scalars, states) -> (dw, new_states)`, all float32;
        `w += dw` is applied with `self.assign_add`.
        """
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        scalars = [tf.cast(s, tf.float32) for s in scalars]
        # Kernels run one after another: under tf.function, TensorFlow would
        # otherwise run the (independent) kernels of several variables at
        # once, and their float32 temporaries would add up in memory.
        previous = self._blockwise.previous
        dependencies = []
        if previous is not None and previous.graph is tf.compat.v1.get_default_graph():
            dependencies = [previous]
        with tf.control_dependencies(dependencies):
            weight = tf.convert_to_tensor(variable)
            stored = [tf.convert_to_tensor(v) for s in states for v in s.stored()]
            step, encoded = self._kernel(variable, rule, states)(
                gradient, weight, scalars, stored
            )
        self._blockwise.previous = None if tf.executing_eagerly() else step
        targets = [v for s in states for v in s.stored()]
        for target, value in zip(targets, encoded):
            self.assign(target, value)
        self.assign_add(variable, step)

    def _blockwise_config(self):
        return {"block_size": self.block_size, "min_8bit_size": self.min_8bit_size}
