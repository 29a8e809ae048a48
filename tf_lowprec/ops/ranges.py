"""Per-block ranges (min, max) and largest magnitudes of finite entries.

Block floating point and integer-affine quantization need, per block, the
largest finite magnitude (or the min and max). Two CPU facts shape this
file (measured in `benchmarks/quantizer_throughput.py` and while writing
it):

* XLA's CPU backend compiles NaN-aware `max` reductions into loops 2-4x
  slower than a sum, while an elementwise `maximum` of two tensors is
  vectorized. `_reduce` therefore first folds the reduced extent 8-fold with
  elementwise maxima (when it divides by 8), then reduces what is left.
* TensorFlow's own (Eigen) reductions are vectorized and multithreaded. For
  large tensors with contiguous blocks (one block, or blocks along the
  leading axis), `estimate_range` runs `tf.reduce_min`/`tf.reduce_max`
  outside the compiled quantizer, and the kernel accepts that estimate when
  it is finite. If it is not (the block holds a NaN or an inf, which
  `reduce_max` propagates), the kernel recomputes over the finite entries.

Max and min are exact in any order, so every path gives the same bits.
"""

import tensorflow as tf

# Below this many elements one compiled launch beats extra TF reductions.
MIN_ELEMENTS_FOR_ESTIMATE = 1 << 20
_FOLD = 8


def is_leading_layout(axes, rank):
    """Whether reducing over `axes` reduces contiguous trailing memory."""
    return axes is None or list(axes) == list(range(1, rank))


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


def _fold_max(a, axis):
    """Elementwise max of the 8 equal slices of static `axis` (if it divides)."""
    n = a.shape[axis]
    if n is None or n < 2 * _FOLD or n % _FOLD:
        return a
    shape = a.shape.as_list()
    if None in shape:
        return a
    folded = tf.reshape(a, shape[:axis] + [_FOLD, n // _FOLD] + shape[axis + 1 :])
    parts = tf.unstack(folded, axis=axis)
    while len(parts) > 1:
        parts = [tf.maximum(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
    return parts[0]


def _reduce(a, axes, reducer, fold):
    """`reducer(a, axes, keepdims=True)`, pre-folded with `fold` when possible."""
    rank = a.shape.rank
    if axes is not None and not axes:  # every element is its own block
        return a
    if fold is not None and a.shape.is_fully_defined():
        if axes is None:
            a = tf.reshape(a, [-1])
            a = fold(a, 0)
            return tf.reshape(reducer(a), [1] * rank)
        if rank >= 2 and list(axes) == list(range(rank - 1)):
            # Blocks along the last axis: reduce the flattened leading axes.
            shape = a.shape.as_list()
            a = fold(tf.reshape(a, [-1, shape[-1]]), 0)
            return tf.reshape(reducer(a, axis=0), [1] * (rank - 1) + [shape[-1]])
        if is_leading_layout(axes, rank):
            shape = a.shape.as_list()
            a = fold(tf.reshape(a, [shape[0], -1]), 1)
            return tf.reshape(reducer(a, axis=1), [shape[0]] + [1] * (rank - 1))
    return reducer(a, axis=axes, keepdims=True)


def _fold_min(a, axis):
    return -_fold_max(-a, axis)


def finite_abs_max(x, axes, estimate=()):
    """Largest finite magnitude of float32 `x` over `axes` (keepdims); 0 if none."""

    def exact():
        magnitude = tf.where(tf.math.is_finite(x), tf.abs(x), 0.0)
        return _reduce(magnitude, axes, tf.reduce_max, _fold_max)

    if not estimate:
        return exact()
    low, high = (tf.cast(t, tf.float32) for t in estimate)
    usable = tf.reduce_all(tf.math.is_finite(low) & tf.math.is_finite(high))
    return tf.cond(usable, lambda: tf.maximum(high, -low), exact)


def finite_range(x, axes, estimate=()):
    """`(min, max)` over `axes` (keepdims) of float32 `x`, non-finite entries
    counted as 0 (which `min(low, 0)` / `max(high, 0)` callers absorb)."""

    def exact():
        clean = tf.where(tf.math.is_finite(x), x, 0.0)
        return (
            _reduce(clean, axes, tf.reduce_min, _fold_min),
            _reduce(clean, axes, tf.reduce_max, _fold_max),
        )

    if not estimate:
        return exact()
    low, high = (tf.cast(t, tf.float32) for t in estimate)
    usable = tf.reduce_all(tf.math.is_finite(low) & tf.math.is_finite(high))
    return tf.cond(usable, lambda: (low, high), exact)
