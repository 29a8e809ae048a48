"""`quantize_scaled(x, scale, bits)`: integers times a runtime scale (HALP's Q).

    Q(x) = clamp(R(x / scale), -2^(bits-1), 2^(bits-1) - 1) * scale

with `R` nearest (half to even) or stochastic rounding. It is `FixedPoint`
with an arbitrary, possibly tensor-valued scale instead of `2^-fl`: HALP
(De Sa et al. 2018) quantizes its offset `z` with `scale = delta =
||g|| / (mu (2^(bits-1) - 1))`, recomputed every outer epoch. Entries whose
scale is `<= 0` (e.g. a zero gradient norm) quantize to 0 instead of NaN;
NaN and +-inf pass through. The gradient with respect to `x` is straight
through; `scale` gets none.

Example (HALP test vector, `delta = 0.01`, `bits = 4`):

>>> quantize_scaled([0.013, -0.013, 0.5, -0.5, 0.0049], 0.01, 4).numpy()
array([ 0.01, -0.01,  0.07, -0.08,  0.  ], dtype=float32)

Reference:
    De Sa, Leszczynski, Zhang, Marzoev, Aberger, Olukotun, Ré,
    "High-Accuracy Low-Precision Training", 2018; torchhalp `quantize_`.
"""

import numbers

import tensorflow as tf

from tf_lowprec.ops import rounding as rounding_lib
from tf_lowprec.ops.quantize import as_float_tensor
from tf_lowprec.ops.quantize import check_rounding
from tf_lowprec.ops.quantize import compiled
from tf_lowprec.ops.quantize import seed_tensor
from tf_lowprec.ops.quantize import shape_key
from tf_lowprec.ops.quantize import straight_through

__all__ = ["quantize_scaled"]


def _kernel(bits, rounding):
    low = -(2.0 ** (bits - 1))

    def body(x, seed, scale):
        positive = scale > 0.0
        safe_scale = tf.where(positive, scale, 1.0)
        v = x / safe_scale
        if rounding == "nearest":
            k = rounding_lib.round_nearest(v)
        else:
            k = rounding_lib.round_stochastic(v, seed)
        q = tf.clip_by_value(k, low, -low - 1.0) * safe_scale
        q = tf.where(positive, q, 0.0)
        return tf.where(tf.math.is_finite(x), q, x)

    return body


def quantize_scaled(x, scale, bits, rounding="nearest", seed=None):
    """Quantizes `x` to `bits`-bit two's-complement integers times `scale`.

    Args:
        x: a float tensor.
        scale: positive float scalar or tensor broadcastable to `x`.
        bits: integer width in `[2, 24]`.
        rounding: `"nearest"` or `"stochastic"`. Defaults to `"nearest"`.
        seed: as for `tf_lowprec.ops.quantize`.
    """
    check_rounding(rounding)
    if (
        not isinstance(bits, numbers.Integral)
        or isinstance(bits, bool)
        or not 2 <= bits <= 24
    ):
        raise ValueError(
            f"`bits` must be an integer in [2, 24]. Received: bits={bits!r}"
        )
    x = as_float_tensor(x)
    scale = tf.cast(tf.convert_to_tensor(scale), tf.float32)
    run = compiled(
        ("scaled", int(bits), rounding, shape_key(x), shape_key(scale)),
        _kernel(int(bits), rounding),
    )
    return straight_through(
        run, x, seed_tensor(rounding, seed), scale
    )
