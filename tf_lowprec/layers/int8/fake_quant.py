"""TensorFlow FakeQuant ops in the form the TFLite converter turns into int8 kernels.

Weights (symmetric, per output channel, narrow range; per tensor for Dense,
see `quantize_weights_per_tensor`). For channel `c`,

    m_c = max |w_c|,   scale_c = m_c / 127,   zero point 0,
    w_q = scale_c * clamp(round(w_c / scale_c), -127, 127)

written as `tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -m, m,
num_bits=8, narrow_range=True)`: with the range `[-m, m]` and the narrow
integer range `[1, 255]` the op's zero point is exactly 128, so it is the
int8 grid above shifted by 128. TFLite stores such weights as int8 with
zero point 0 and one scale per output channel (the TFLite 8-bit
quantization spec).

Activations (asymmetric, per tensor). For a range `[lo, hi]` with
`lo <= 0 <= hi` the op uses `scale = (hi - lo) / 255` and the zero point
`round(-lo / scale)` in `[0, 255]`, then moves `lo, hi` by less than half a
step so that `lo = -zero_point * scale`: zero is then exactly a grid point
("nudging"). `nudged_range` repeats that arithmetic in numpy so callers can
read the frozen grid; TFLite's int8 zero point is the op's minus 128.

References:
    Jacob et al. 2018, "Quantization and Training of Neural Networks for
    Efficient Integer-Arithmetic-Only Inference", sections 2 and 3.
    https://www.tensorflow.org/lite/performance/quantization_spec
"""

import numpy as np
import tensorflow as tf

NUM_BITS = 8
# Smallest width given to an activation range, so that a range that has seen
# only zeros (a dead ReLU) still has a positive scale.
MIN_RANGE_WIDTH = 1e-6


def quantize_weights_per_channel(kernel, channel_axis=-1):
    """Symmetric narrow-range int8 fake quantization, one scale per channel.

    Args:
        kernel: float tensor.
        channel_axis: axis of the output channels (moved last for the op).

    Returns:
        The fake-quantized kernel, same shape; the straight-through
        gradient of `fake_quant_with_min_max_vars_per_channel` flows to
        `kernel`.
    """
    rank = kernel.shape.rank
    axis = channel_axis % rank
    if axis != rank - 1:
        perm = [d for d in range(rank) if d != axis] + [axis]
        inverse = np.argsort(perm).tolist()
        return tf.transpose(
            quantize_weights_per_channel(tf.transpose(kernel, perm)), inverse
        )
    reduce_axes = list(range(rank - 1))
    bound = tf.reduce_max(tf.abs(tf.stop_gradient(kernel)), axis=reduce_axes)
    # An all-zero channel keeps a nonzero range (its codes are all 0).
    bound = tf.maximum(bound, MIN_RANGE_WIDTH)
    return tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, -bound, bound, num_bits=NUM_BITS, narrow_range=True
    )


def quantize_weights_per_tensor(kernel):
    """Symmetric narrow-range int8 fake quantization with one scale, `max|w| / 127`.

    Used for Dense kernels: TFLite's FULLY_CONNECTED stores the kernel
    transposed, and the converter cannot carry a per-channel FakeQuant
    range through that transpose ("mismatched quantized axes"), so a
    per-tensor range is the one it turns into an int8 kernel (TFMOT also
    quantizes Dense kernels per tensor).
    """
    bound = tf.maximum(tf.reduce_max(tf.abs(tf.stop_gradient(kernel))), MIN_RANGE_WIDTH)
    return tf.quantization.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=NUM_BITS, narrow_range=True
    )


def quantize_activations(x, range_min, range_max):
    """Asymmetric per-tensor int8 fake quantization to `[range_min, range_max]`."""
    range_max = tf.maximum(range_max, range_min + MIN_RANGE_WIDTH)
    return tf.quantization.fake_quant_with_min_max_vars(
        x, range_min, range_max, num_bits=NUM_BITS, narrow_range=False
    )


def nudged_range(range_min, range_max):
    """The grid the activation FakeQuant op uses for `[range_min, range_max]`.

    Mirrors the op's nudging (float32 arithmetic as in the kernel).

    Returns:
        `(nudged_min, nudged_max, scale, zero_point)`; `zero_point` is the
        uint8 zero point (TFLite's int8 one is `zero_point - 128`), and
        `nudged_min == -zero_point * scale` so 0 is on the grid.
    """
    lo = np.float32(range_min)
    hi = np.float32(max(np.float32(range_max), lo + np.float32(MIN_RANGE_WIDTH)))
    quant_min, quant_max = np.float32(0), np.float32(2**NUM_BITS - 1)
    scale = np.float32((hi - lo) / (quant_max - quant_min))
    zero_point_from_min = np.float32(quant_min - lo / scale)
    if zero_point_from_min < quant_min:
        zero_point = quant_min
    elif zero_point_from_min > quant_max:
        zero_point = quant_max
    else:
        # The op rounds half away from zero (std::round); here the value is >= 0.
        zero_point = np.float32(np.floor(zero_point_from_min + np.float32(0.5)))
    nudged_min = np.float32((quant_min - zero_point) * scale)
    nudged_max = np.float32((quant_max - zero_point) * scale)
    return nudged_min, nudged_max, scale, int(zero_point)
