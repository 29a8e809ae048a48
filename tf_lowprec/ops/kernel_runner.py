"""Running a quantization kernel: float32 in XLA, a straight-through gradient.

The seam between the pure per-format kernels (`fixed_point.py`, ...,
`scaled_integer.py`) and TensorFlow: each kernel is wrapped in a cached
`tf.function(jit_compile=True)` that computes in float32 and casts back to
the input dtype (`compiled`), gets its stochastic-rounding seed as a
`uint32[2]` tensor (`seed_tensor`) and is given the identity gradient
outside the compiled function (`straight_through`). A quantizer module
names its kernel once (`per_shape`) and runs it with `quantize_forward`
(`Q` forward, identity backward) or `quantize_backward` (identity forward,
`Q` on the gradient). See `tf_lowprec.ops.quantize` for the conventions
and the speed notes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from tf_lowprec.ops import rounding as rounding_lib

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

__all__ = [
    "as_float_tensor",
    "compiled",
    "per_shape",
    "quantize_backward",
    "quantize_forward",
    "seed_tensor",
    "shape_key",
    "straight_through",
]

_COMPILED = {}


def compiled(key: Hashable, body: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
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


def shape_key(x: tf.Tensor) -> tuple[Any, ...]:
    """The static shape of `x` if fully known, else its rank.

    One compiled function per static shape keeps every trace fully shaped
    (XLA compiles per shape anyway, and the block reductions of `ranges`
    need static shapes to fold); tensors of unknown shape share one
    function per rank, whose traced shape is generalized.
    """
    if x.shape.is_fully_defined():
        return tuple(x.shape.as_list())
    return ("rank", x.shape.rank)


def per_shape(key: tuple[Hashable, ...], body: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
    """`run(x, seed, *tensors)`: `body` `compiled` once per `key` and input shapes.

    The cache key is `key` followed by `shape_key` of `x` and of each of
    `tensors`, so `key` only has to name the kernel (e.g. format and
    rounding).
    """

    def run(x, seed, *tensors):
        shapes = (shape_key(x), *(shape_key(t) for t in tensors))
        return compiled((*key, *shapes), body)(x, seed, *tensors)

    return run


def quantize_forward(
    run: Callable[..., tf.Tensor],
    x: TensorLike,
    rounding: str,
    seed: rounding_lib.SeedLike,
    *tensors: TensorLike,
) -> tf.Tensor:
    """`run(x, seed, *tensors)` forward, identity gradient for `x`.

    `x` must be a float tensor (`as_float_tensor`); `seed` becomes the
    kernel's `uint32[2]` seed for `rounding` (`seed_tensor`).
    """
    x = as_float_tensor(x)
    return straight_through(run, x, seed_tensor(rounding, seed), *tensors)


def quantize_backward(
    run: Callable[..., tf.Tensor],
    x: TensorLike,
    rounding: str,
    seed: rounding_lib.SeedLike,
) -> tf.Tensor:
    """Identity forward; `run(dy, seed)` on the incoming gradient `dy`.

    The seed is drawn here, in the forward pass, so a
    `keras.random.SeedGenerator` advances once per call.
    """
    x = as_float_tensor(x)
    seed = seed_tensor(rounding, seed)

    @tf.custom_gradient
    def forward(x):
        return tf.identity(x), lambda dy: run(tf.stop_gradient(dy), seed)

    return forward(x)


def _run_in_float32(body, x, seed, *tensors):
    x32 = saturating_cast(x, tf.float32)
    q = body(x32, seed, *tensors)
    # Finite in, finite out: a kernel's rounding may step past the largest
    # float32 (e.g. an affine range of 2 * max), and the cast back may
    # overflow a narrower dtype (bfloat16's grid reaches 65536 > float16 max).
    return saturating_cast(_saturate_where_finite(x32, q, tf.float32), x.dtype)


def _saturate_where_finite(x, q, dtype):
    """`q` clipped to `dtype`'s finite range where `x` is finite; else `q`.

    Written with `where` rather than `clip_by_value`: min/max flush
    subnormals to zero on CPU, and subnormal results must survive.
    """
    largest = tf.constant(_finite_max(dtype), q.dtype)
    beyond = tf.math.is_finite(x) & (tf.abs(q) > largest)
    return tf.where(beyond, tf.where(q > 0, largest, -largest), q)


def _finite_max(dtype):
    return float(tf.as_dtype(dtype).max)


def saturating_cast(x, dtype):
    """`tf.cast` that maps finite values beyond `dtype`'s range to its extremes.

    A plain cast rounds them to +-inf (float64 1e300 -> float32 inf); here
    they become `+-dtype.max`. NaN and +-inf are cast unchanged.
    """
    dtype = tf.as_dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.dtype.is_floating and _finite_max(x.dtype) > _finite_max(dtype):
        x = _saturate_where_finite(x, x, dtype)
    return tf.cast(x, dtype)


def as_float_tensor(x: TensorLike, name: str = "x") -> tf.Tensor:
    """`x` as a floating-point tensor, or `ValueError`."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(
            f"`{name}` must have a floating-point dtype. Received: "
            f"{name} with dtype={x.dtype.name}"
        )
    return x


def seed_tensor(rounding: str, seed: rounding_lib.SeedLike) -> tf.Tensor:
    """The `uint32[2]` seed for `rounding` (a constant for "nearest")."""
    if rounding == "stochastic":
        return rounding_lib.canonical_seed(seed)
    return tf.zeros([2], tf.uint32)


def straight_through(
    fn: Callable[..., tf.Tensor], x: tf.Tensor, *args: TensorLike
) -> tf.Tensor:
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
