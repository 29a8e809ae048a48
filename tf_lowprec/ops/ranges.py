"""Per-block ranges (min, max) of finite entries, fast on CPU.

Block floating point and integer-affine quantization need, per block, the
range of the finite entries. XLA's CPU backend compiles NaN-aware `max`
reductions into slow scalar loops (about 4x slower than a sum here), while
TensorFlow's own (Eigen) reductions are vectorized and multithreaded. So
when the tensor is large and the blocks are contiguous (one block, or
blocks along the leading axis), `estimate_range` runs TensorFlow's
`reduce_min`/`reduce_max` outside the compiled quantizer, and
`finite_range` (inside it) accepts that estimate when it is finite. If the estimate is not finite (the block holds a NaN or
an inf, which `reduce_max` propagates), `finite_range` recomputes the range
over the finite entries only. The result is the same either way.
"""

import tensorflow as tf


def is_leading_layout(axes, rank):
    """Whether reducing over `axes` reduces contiguous trailing memory."""
    return axes is None or list(axes) == list(range(1, rank))


# Below this many elements one compiled launch beats extra TF reductions.
MIN_ELEMENTS_FOR_ESTIMATE = 1 << 20


def estimate_range(x, axes):
    """`(min, max)` over `axes` (keepdims) with TF kernels, or `()`.

    Returns an empty tuple when the layout is not contiguous or the tensor is
    small (or of unknown size); the compiled kernel then computes the range
    itself.
    """
    size = x.shape.num_elements()
    if size is None or size < MIN_ELEMENTS_FOR_ESTIMATE:
        return ()
    if not is_leading_layout(axes, x.shape.rank):
        return ()
    return (
        tf.reduce_min(x, axis=axes, keepdims=True),
        tf.reduce_max(x, axis=axes, keepdims=True),
    )


def finite_range(x, axes, estimate=()):
    """`(min, max)` of the finite entries of float32 `x` over `axes` (keepdims).

    Blocks without finite entries get `(0, 0)`.
    """

    def exact():
        finite = tf.math.is_finite(x)
        low = tf.reduce_min(tf.where(finite, x, 0.0), axis=axes, keepdims=True)
        high = tf.reduce_max(tf.where(finite, x, 0.0), axis=axes, keepdims=True)
        has_finite = tf.reduce_any(finite, axis=axes, keepdims=True)
        # where(finite, x, 0) pulls all-positive blocks' min to 0 (and
        # all-negative blocks' max); callers only use min(low, 0), max(high,
        # 0) or max(high, -low), on which that has no effect.
        return tf.where(has_finite, low, 0.0), tf.where(has_finite, high, 0.0)

    if not estimate:
        return exact()
    low, high = (tf.cast(t, tf.float32) for t in estimate)
    usable = tf.reduce_all(tf.math.is_finite(low) & tf.math.is_finite(high))
    return tf.cond(usable, lambda: (low, high), exact)


def finite_abs_max(x, axes, estimate=()):
    """Largest finite magnitude of float32 `x` over `axes` (keepdims); 0 if none."""
    low, high = finite_range(x, axes, estimate)
    return tf.maximum(high, -low)
