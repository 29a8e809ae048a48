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
variables. The kernel walks the tensor in chunks of `CHUNK_ENTRIES`
(16384) entries, 64 blocks of 256, in a `tf.while_loop`
(`_run_in_chunks`) whose results go into `tf.TensorArray`s (in XLA:
output buffers zero-filled once, then updated in place); within a chunk
XLA fuses the stages into a few loops. XLA runs a loop over such small
arrays on one core. Kernels of different variables run in `KERNEL_LANES` (1) lanes:
each kernel waits until the previous variable of its lane is updated (its
outputs assigned), and a variable joins the lane with the fewest entries
so far. Variables are updated last first: backpropagation delivers the
last layer's gradient first, so the chain of kernels runs alongside the
rest of the backward pass instead of after it.

Memory: between steps only codes and scales are stored. During the
update the transient temporaries are, per lane, chunk-sized float32
arrays inside the kernel (64 KiB each, a few per state, so they stay in
the CPU caches) and the kernel's outputs until they are assigned: the
float32 step `dw` (4 bytes per entry, like the gradient) and the new
codes (1 byte per entry per state). With one lane, one variable's
outputs exist at a time.

The weight is updated with the float32 `s'` (not with its quantized
value), as bitsandbytes does; the rounding error of the stored state
enters the next step only. Rounding is nearest (deterministic), so
replicas under `tf.distribute` that see the same all-reduced gradient
store the same codes, and a run resumed from a `.keras` file continues
bit for bit.

Speed: the code of an entry is found with one table read and integer
operations (`tf_lowprec.ops.blockwise`), and the small chunks keep the
temporaries in cache; the step time against Keras Adam (whose update of
float32 moments makes several full-size passes over them) is measured by
`benchmarks/low_precision_memory.py time`.

The weight update is applied with the optimizer's `assign_add` /
`assign_sub`, so wrappers that intercept them (`StochasticRounding`, for
bfloat16 weights) see the float32 step. Sparse gradients are densified.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

import keras
import tensorflow as tf

from tf_lowprec import validation
from tf_lowprec.ops.blockwise import (
    as_blocks,
    check_block_size,
    dequantize_blocks,
    from_blocks,
    number_of_blocks,
    quantize_blocks,
)
from tf_lowprec.optimizers.inner_optimizer import Untracked, slot_prefix
from tf_lowprec.optimizers.learning_rate import LearningRate

CODES = "codes"
ABSMAX = "absmax"
# Entries per step of the update loop (64 blocks of 256): its float32
# temporaries are 64 KiB each, so they stay in the CPU caches (see
# `_run_in_chunks`).
CHUNK_ENTRIES = 16384
# Kernels (of different variables) that may run at the same time. XLA runs
# a kernel's chunk loop on one core, so 2 lanes use both cores of a 2-core
# CPU (a shorter step; `benchmarks/low_precision_memory.py time
# --kernel-lanes 2` measures it), but each lane adds one variable's kernel
# outputs (and a wrapper's temporaries) to the peak memory: on that
# benchmark's 54.6M-parameter MLP, peak RSS 1498 MiB (float32 weights) /
# 1431 MiB (bfloat16 + StochasticRounding) with 1 lane, 1597 / 1649 MiB
# with 2; Keras Adam 1735 MiB. Memory is the point of 8-bit states: one lane.
KERNEL_LANES = 1


def check_min_8bit_size(value):
    """Raises `ValueError` unless `value` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`min_8bit_size` must be an int >= 0. Received: min_8bit_size={value!r}"
        )


def _run_in_chunks(rule, layout, block_size, gradient, weight, scalars, stored):
    """The fused step on `[n_blocks, block_size]` views, chunk by chunk.

    A chunk is `max(1, CHUNK_ENTRIES // block_size)` consecutive blocks.
    Each one dequantizes its rows of every state, applies `rule` and
    requantizes them; a `tf.while_loop` runs the whole chunks and writes
    their results into `tf.TensorArray`s (in XLA: in-place dynamic update
    slices of the output buffers), a last partial chunk (when the chunk
    does not divide the number of blocks) runs after the loop and is
    concatenated. The float32 temporaries of XLA are chunk-sized, not
    variable-sized.
    """
    shape = gradient.shape
    gradient = tf.cast(gradient, tf.float32)  # inside the kernel: fused, no copy
    weight = tf.cast(weight, tf.float32)
    inputs = [as_blocks(gradient, block_size), as_blocks(weight, block_size)]
    position = 0
    for eight_bit, _ in layout:
        inputs.append(as_blocks(stored[position], block_size))
        if eight_bit:
            inputs.append(stored[position + 1])
        position += 2 if eight_bit else 1
    n = inputs[0].shape[0]
    rows = min(n, max(1, CHUNK_ENTRIES // block_size))

    def chunk(start, size):
        g, w, *states = [
            tf.slice(t, [start] + [0] * (t.shape.rank - 1), [size, *t.shape[1:]])
            for t in inputs
        ]
        decoded, position = [], 0
        for eight_bit, _ in layout:
            if eight_bit:
                decoded.append(dequantize_blocks(*states[position : position + 2]))
            else:
                decoded.append(states[position])
            position += 2 if eight_bit else 1
        step, new_states = rule(g, w, scalars, decoded)
        encoded = []
        for (eight_bit, signed), state in zip(layout, new_states):
            encoded.extend(quantize_blocks(state, signed) if eight_bit else [state])
        return [step, *encoded]

    count, remainder = divmod(n, rows)
    if count == 1 and not remainder:
        outputs = chunk(0, n)
    else:
        template = chunk(0, rows)  # dtypes and per-chunk shapes (traced only)
        arrays = [
            tf.TensorArray(t.dtype, size=count, element_shape=t.shape) for t in template
        ]

        def body(i, *arrays):
            parts = chunk(i * rows, rows)
            return (i + 1, *(a.write(i, p) for a, p in zip(arrays, parts)))

        arrays = tf.while_loop(
            lambda i, *_: i < count, body, [tf.constant(0), *arrays]
        )[1:]
        outputs = [
            tf.reshape(a.stack(), [count * rows, *t.shape[1:]])
            for a, t in zip(arrays, template)
        ]
        if remainder:
            last = chunk(count * rows, remainder)
            outputs = [tf.concat([o, p], 0) for o, p in zip(outputs, last)]
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

    Listed before the Keras optimizer in the bases: `__init__` checks
    `learning_rate`, `block_size`, `min_8bit_size` and the base optimizer
    arguments and passes the rest (the rule's own arguments, already
    checked by the subclass) to the Keras optimizer. Create states with
    `_add_state` in `build`, and run the update with
    `_fused_update(variable, gradient, rule, states, scalars)`.
    """

    def __init__(
        self,
        learning_rate: LearningRate,
        block_size: int = 256,
        min_8bit_size: int = 4096,
        **kwargs: Any,
    ) -> None:
        learning_rate = validation.learning_rate(learning_rate)
        check_block_size(block_size)
        check_min_8bit_size(min_8bit_size)
        validation.optimizer_common_args(**kwargs)
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.block_size = int(block_size)
        self.min_8bit_size = int(min_8bit_size)
        self._blockwise = Untracked(
            kernels={}, lanes={}, loads=[0] * KERNEL_LANES, previous=[None] * KERNEL_LANES
        )

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
        size = math.prod(int(d) for d in variable.shape)
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
        absmax = self.add_variable(
            (number_of_blocks(size, self.block_size),), "zeros", "float32", name=f"{slot}_{ABSMAX}_{reference}"
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

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # Keras's TF backend updates the variables in this order; the lanes
        # chain the kernels in it. Last variable first: backpropagation
        # computes its gradient first, so its kernel can run while the
        # gradients of the earlier layers are still being computed (the
        # updates are independent; the order changes no result).
        return super()._distributed_tf_update_step(
            distribution, grads_and_vars[::-1], learning_rate
        )

    def _lane(self, variable):
        # Fixed per variable, given on first use to the least loaded lane
        # (by entries), so the lanes take about equal shares of the work.
        index = self._get_variable_index(variable)
        lanes, loads = self._blockwise.lanes, self._blockwise.loads
        if index not in lanes:
            lanes[index] = loads.index(min(loads))
            loads[lanes[index]] += math.prod(int(d) for d in variable.shape)
        return lanes[index]

    def _fused_update(self, variable, gradient, rule, states, scalars):
        """Runs `rule` in float32 on the dequantized states; stores the result.

        `rule(g, w, scalars, states) -> (dw, new_states)`, all float32;
        `w += dw` is applied with `self.assign_add`.
        """
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        scalars = [tf.cast(s, tf.float32) for s in scalars]
        # Under tf.function TensorFlow would run the (independent) kernels of
        # all variables at once, and their outputs would add up in memory:
        # each kernel waits until the previous variable of its lane is
        # updated, so at most KERNEL_LANES run at a time (each on one core).
        lane = self._lane(variable)
        previous = self._blockwise.previous[lane]
        dependencies = []
        if previous is not None and previous.graph is tf.compat.v1.get_default_graph():
            dependencies = [previous]
        with tf.control_dependencies(dependencies):
            weight = tf.convert_to_tensor(variable)
            stored = [tf.convert_to_tensor(v) for s in states for v in s.stored()]
            step, encoded = self._kernel(variable, rule, states)(
                gradient, weight, scalars, stored
            )
        targets = [v for s in states for v in s.stored()]
        for target, value in zip(targets, encoded):
            self.assign(target, value)
        self.assign_add(variable, step)
        if tf.executing_eagerly():
            self._blockwise.previous[lane] = None
        else:
            # Reads after the writes (automatic control dependencies order
            # them): the lane's next kernel starts once this variable's
            # kernel outputs are consumed, so they do not pile up.
            self._blockwise.previous[lane] = tf.group(
                *(tf.convert_to_tensor(v) for v in [variable, *targets])
            )

    def _blockwise_config(self):
        return {"block_size": self.block_size, "min_8bit_size": self.min_8bit_size}
