"""`quantize(x, fmt, rounding)`: the public quantizer, with a straight-through gradient.

    y = Q_fmt(x)                   forward: round onto the format's grid
    dL/dx = dL/dy                  backward: straight-through estimator

`quantize_gradient(x, fmt)` is the mirror image (identity forward, `Q` on
the incoming gradient); composing the two gives SWALP/QPyTorch's
"quantize activations forward, errors backward":

    y = quantize_gradient(quantize(x, activation_fmt), error_fmt)

Conventions (all formats):

* Rounding `"nearest"` is round-half-to-even; `"stochastic"` is
  `floor(v + u)`, `u ~ U[0, 1)` (unbiased); see `tf_lowprec.ops.rounding`
  for seeds.
* Round first, then clamp: values beyond the format's range become its
  extreme finite values (`FixedPoint`: the two's-complement ends
  `[-2^(wl-1), 2^(wl-1) - 1] ulp`; `BlockFloatingPoint`: the symmetric
  `+-(2^(wl-1) - 1) ulp`; `FloatingPoint`: `+-max_value`, never inf;
  `IntegerAffine`: its code range).
* NaN and +-inf are returned unchanged, so overflow checks downstream (e.g.
  `keras.optimizers.LossScaleOptimizer`) still see them; they are also left
  out of block maxima and affine ranges. Finite inputs always give finite
  outputs.
* An all-zero block or channel gives zeros, never NaN.
* Any float dtype is accepted. The arithmetic is float32 (exact for every
  format here); the result is cast back to the input dtype, which for
  float16/bfloat16 inputs rounds again if the format is finer than the
  dtype, and for float64 inputs means the input is first rounded to float32.
  Both casts saturate (`kernel_runner.saturating_cast`): a finite value
  beyond the target dtype's range becomes its largest finite value (float16's
  65504 for a bfloat16 grid point of 65536; float32's max for a float64
  1e300), never inf.

Format-specific definitions and the differences from QPyTorch and SWALP are
in `fixed_point.py`, `block_floating_point.py`, `floating_point.py` and
`integer_affine.py` next to this file.

Speed: each quantizer runs inside a `tf.function(jit_compile=True)` (one
per format, rounding mode and input shape), so XLA fuses the elementwise
chain, the random bits and the block reductions into one or two loops over
the tensor; `benchmarks/quantizer_throughput.py` compares it with a plain
multiply of the same tensor (and with unfused TF ops). The compiled kernel
gets `stop_gradient(x)`, and the straight-through gradient is attached
outside it, so a `GradientTape` never asks TensorFlow to keep the kernel's
intermediates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from tf_lowprec import formats
from tf_lowprec.formats import check_format  # noqa: F401 (public here too)
from tf_lowprec.ops.block_floating_point import quantize_block_floating_point
from tf_lowprec.ops.fixed_point import quantize_fixed_point
from tf_lowprec.ops.floating_point import quantize_floating_point
from tf_lowprec.ops.integer_affine import quantize_integer_affine
from tf_lowprec.ops.kernel_runner import per_shape, quantize_backward, quantize_forward
from tf_lowprec.ops.rounding import ROUNDING_MODES, SeedLike, check_rounding

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = ["quantize", "quantize_gradient", "ROUNDING_MODES"]

_KERNELS = {
    formats.FixedPoint: quantize_fixed_point,
    formats.BlockFloatingPoint: quantize_block_floating_point,
    formats.FloatingPoint: quantize_floating_point,
    formats.IntegerAffine: quantize_integer_affine,
}


def _format_runner(fmt, rounding):
    """`run(x, seed)`: the compiled kernel of `fmt` for `x`'s shape."""
    kernel = _KERNELS[type(fmt)]
    return per_shape((type(fmt), fmt, rounding), lambda x, seed: kernel(x, fmt, rounding, seed))


def quantize(
    x: TensorLike, fmt: formats.NumberFormat, rounding: str = "nearest", seed: SeedLike = None
) -> tf.Tensor:
    """Rounds `x` onto the grid of `fmt`, with a straight-through gradient.

    Args:
        x: a float tensor (any float dtype; see the module docstring).
        fmt: a `FixedPoint`, `BlockFloatingPoint`, `FloatingPoint` or
            `IntegerAffine` from `tf_lowprec.formats`, or `None` (returns `x`
            unchanged).
        rounding: `"nearest"` (half to even) or `"stochastic"` (unbiased).
            Defaults to `"nearest"`.
        seed: only for stochastic rounding: `None` (fresh randomness), an
            int (a fixed stream), a `keras.random.SeedGenerator` or an
            integer tensor of shape `[2]`.

    Returns:
        A tensor with the shape and dtype of `x`.

    Example:

    >>> quantize([0.3, -1.26, 100.0], FixedPoint(8, 4)).numpy()
    array([ 0.3125, -1.25  ,  7.9375], dtype=float32)
    """
    check_rounding(rounding)
    if fmt is None:
        return tf.convert_to_tensor(x)
    check_format(fmt)
    return quantize_forward(_format_runner(fmt, rounding), x, rounding, seed)


def quantize_gradient(
    x: TensorLike,
    fmt: formats.NumberFormat | None,
    rounding: str = "stochastic",
    seed: SeedLike = None,
) -> tf.Tensor:
    """Identity forward; quantizes the incoming gradient `dL/dx` to `fmt`.

    Use it after an activation to quantize the back-propagated error (SWALP's
    `Q_E`), or on a weight to quantize its gradient. The seed is drawn in the
    forward pass, so a `keras.random.SeedGenerator` advances once per call.

    Args:
        x: a float tensor.
        fmt: a number format, or `None` (the gradient passes unchanged).
        rounding: `"nearest"` or `"stochastic"`. Defaults to `"stochastic"`.
        seed: as for `quantize`.
    """
    check_rounding(rounding)
    x = tf.convert_to_tensor(x)
    if fmt is None:
        return x
    check_format(fmt)
    return quantize_backward(_format_runner(fmt, rounding), x, rounding, seed)
