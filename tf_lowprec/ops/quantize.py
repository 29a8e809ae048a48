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

import functools

import tensorflow as tf

from tf_lowprec import formats
from tf_lowprec.ops import rounding as rounding_lib
from tf_lowprec.ops.block_floating_point import quantize_block_floating_point
from tf_lowprec.ops.fixed_point import quantize_fixed_point
from tf_lowprec.ops.floating_point import quantize_floating_point
from tf_lowprec.ops.integer_affine import quantize_integer_affine

__all__ = ["quantize", "quantize_gradient", "ROUNDING_MODES"]

ROUNDING_MODES = ("nearest", "stochastic")

_KERNELS = {
    formats.FixedPoint: quantize_fixed_point,
    formats.BlockFloatingPoint: quantize_block_floating_point,
    formats.FloatingPoint: quantize_floating_point,
    formats.IntegerAffine: quantize_integer_affine,
}

_COMPILED = {}


def check_rounding(rounding, name="rounding"):
    """Raises `ValueError` unless `rounding` is "nearest" or "stochastic"."""
    if rounding not in ROUNDING_MODES:
        raise ValueError(
            f"`{name}` must be one of {ROUNDING_MODES}. "
            f"Received: {name}={rounding!r}"
        )


def check_format(fmt, name="fmt"):
    """Raises `ValueError` unless `fmt` is a tf_lowprec number format."""
    if type(fmt) not in _KERNELS:
        raise ValueError(
            f"`{name}` must be a FixedPoint, BlockFloatingPoint, FloatingPoint "
            f"or IntegerAffine format. Received: {name}={fmt!r}"
        )


def compiled(key, body):
    """A cached `tf.function(jit_compile=True)` running `body` in float32.

    `body(x32, seed, *tensors)` gets `x` cast to float32; its result is cast
    back to `x`'s dtype. `key` identifies `body` (e.g. format and rounding)
    and should include `shape_key(x)`: with `reduce_retracing`, differently
    shaped calls would make the traced dimensions (or the rank) unknown.
    """
    fn = _COMPILED.get(key)
    if fn is None:
        # A partial (not a closure) so that TF's retracing detector, which
        # keys on code objects, counts each compiled quantizer separately.
        fn = tf.function(
            functools.partial(_run_in_float32, body),
            jit_compile=True,
            reduce_retracing=True,
            autograph=False,
        )
        _COMPILED[key] = fn
    return fn


def shape_key(x):
    """The static shape of `x` if fully known, else its rank.

    One compiled function per static shape keeps every trace fully shaped
    (XLA compiles per shape anyway, and the block reductions of `ranges`
    need static shapes to fold); tensors of unknown shape share one
    function per rank, whose traced shape is generalized.
    """
    if x.shape.is_fully_defined():
        return tuple(x.shape.as_list())
    return ("rank", x.shape.rank)


def _run_in_float32(body, x, seed, *tensors):
    q = body(tf.cast(x, tf.float32), seed, *tensors)
    return tf.cast(q, x.dtype)


def as_float_tensor(x, name="x"):
    """`x` as a floating-point tensor, or `ValueError`."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(
            f"`{name}` must have a floating-point dtype. Received: "
            f"{name} with dtype={x.dtype.name}"
        )
    return x


def seed_tensor(rounding, seed):
    """The `uint32[2]` seed for `rounding` (a constant for "nearest")."""
    if rounding == "stochastic":
        return rounding_lib.canonical_seed(seed)
    return tf.zeros([2], tf.uint32)


def straight_through(fn, x, *args):
    """`fn(x, *args)` forward, identity gradient for `x` (none for `args`).

    `fn` sees `stop_gradient(x)`: a tape watching `x` would otherwise make
    TensorFlow build a "record" variant of the compiled function that also
    returns its intermediates for backprop, which the identity gradient
    never uses and which costs memory traffic and fusion.
    """

    @tf.custom_gradient
    def forward(x):
        return fn(tf.stop_gradient(x), *args), lambda dy: dy

    return forward(x)


def _format_runner(fmt, rounding):
    """`run(x, seed)`: the compiled kernel of `fmt` for `x`'s rank."""
    kernel = _KERNELS[type(fmt)]

    def run(x, seed):
        fn = compiled(
            (type(fmt), fmt, rounding, shape_key(x)),
            lambda x, seed: kernel(x, fmt, rounding, seed),
        )
        return fn(x, seed)

    return run


def quantize(x, fmt, rounding="nearest", seed=None):
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
    x = as_float_tensor(x)
    return straight_through(
        _format_runner(fmt, rounding), x, seed_tensor(rounding, seed)
    )


def quantize_gradient(x, fmt, rounding="stochastic", seed=None):
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
    x = as_float_tensor(x)
    run = _format_runner(fmt, rounding)
    seed = seed_tensor(rounding, seed)

    @tf.custom_gradient
    def forward(x):
        return tf.identity(x), lambda dy: run(tf.stop_gradient(dy), seed)

    return forward(x)
