"""Mask math: which weights (or whole units) survive at a given sparsity.

Pure functions of tensors, no variables; the wrappers call them when the
schedule says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras import ops

from tf_lowprec import validation

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow.types.experimental import TensorLike


def keep_count(size: int, sparsity: float) -> int:
    """Number of entries kept out of `size` at `sparsity`.

    `k = max(round(size * (1 - sparsity)), 1)` with round-half-to-even, the
    rule TFMOT uses, so at least one entry always survives. The sparsity that
    results is `1 - k / size`, the closest achievable to the target.

    Args:
        size: Number of entries, >= 1.
        sparsity: Target fraction of zeros, in `[0, 1]`.

    Returns:
        An int in `[1, size]`.
    """
    size = validation.positive_int(size, "size")
    sparsity = validation.float_in_range(sparsity, "sparsity", 0.0, 1.0)
    return max(int(round(size * (1.0 - float(sparsity)))), 1)


def _top_k_mask(scores, k):
    """1 at the `k` largest entries of the 1-D `scores`, 0 elsewhere.

    Ties are broken toward the lower index (`top_k` is stable), so exactly
    `k` entries are kept whatever the ties.
    """
    size = scores.shape[0]
    if k >= size:
        return ops.ones((size,), "float32")
    _, indices = ops.top_k(scores, k, sorted=True)
    return ops.scatter(ops.expand_dims(indices, -1), ops.ones((k,), "float32"), (size,))


def magnitude_mask(weights: TensorLike, sparsity: float) -> tf.Tensor:
    """Unstructured magnitude mask: keeps the `k` largest `|w|` of the tensor.

    With `k = keep_count(w.size, sparsity)`, `mask_i = 1` for the `k` entries
    of largest magnitude and `0` elsewhere. Among equal magnitudes the entry
    with the lower flat (row-major) index is kept, so exactly `k` entries
    survive: the sparsity is exact even when many weights tie (for example
    weights that are already zero). TFMOT instead keeps every `|w| >=` the
    k-th largest value, which keeps all ties and can leave the sparsity below
    target.

    Args:
        weights: A tensor of any shape.
        sparsity: Target fraction of zeros, in `[0, 1)`.

    Returns:
        A float32 tensor of `weights`' shape with entries in {0, 1}.
    """
    shape = tuple(weights.shape)
    scores = ops.reshape(ops.abs(ops.cast(weights, "float32")), (-1,))
    k = keep_count(int(scores.shape[0]), sparsity)
    return ops.reshape(_top_k_mask(scores, k), shape)


def unit_scores(kernel):
    """L1 norm of each output unit (last axis) of a kernel.

    For a Conv2D kernel `(kh, kw, c_in, c_out)` this is the filter norm
    `s_j = sum_{a,b,c} |K[a, b, c, j]|` of Li et al. (2017); for a Dense
    kernel `(n_in, n_out)` it is the column norm `s_j = sum_i |W[i, j]|`.

    Returns:
        A float32 vector of length `kernel.shape[-1]`.
    """
    kernel = ops.abs(ops.cast(kernel, "float32"))
    axes = tuple(range(len(kernel.shape) - 1))
    return ops.sum(kernel, axis=axes) if axes else kernel


def unit_mask(kernel: TensorLike, sparsity: float) -> tf.Tensor:
    """Structured mask over output units: keeps the `k` largest L1 norms.

    `k = keep_count(n_units, sparsity)`; ties keep the lower unit index.

    Args:
        kernel: A kernel whose last axis indexes output units (filters).
        sparsity: Target fraction of units removed, in `[0, 1)`.

    Returns:
        A float32 vector of length `kernel.shape[-1]` with entries in {0, 1}.

    References:
        Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient
        ConvNets", ICLR 2017, https://arxiv.org/abs/1608.08710
    """
    scores = unit_scores(kernel)
    return _top_k_mask(scores, keep_count(int(scores.shape[0]), sparsity))
