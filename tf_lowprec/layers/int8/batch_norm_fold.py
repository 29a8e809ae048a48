"""Folding a BatchNormalization into the kernel and bias of the layer before it.

For a linear layer `z = W * x + b` (Dense, Conv1D, Conv2D, DepthwiseConv2D)
followed by inference-mode batch normalization with per-channel
`gamma, beta`, moving mean `mu` and variance `var`,

    BN(z) = gamma * (z - mu) / sqrt(var + eps) + beta
          = (s * W) * x + (beta + s * (b - mu)),   s = gamma / sqrt(var + eps)

so one layer with kernel `s * W` (each output channel scaled by its `s_c`)
and bias `beta + s * (b - mu)` computes the same function. Quantization
must see the folded kernel, since that is what the integer kernel holds
(Jacob et al. 2018, section 3.2, "batch normalization folding").
"""

import tensorflow as tf


def batch_norm_scale(gamma, moving_variance, epsilon):
    """`s = gamma / sqrt(var + eps)` (gamma may be None: BN without scale)."""
    scale = tf.math.rsqrt(moving_variance + epsilon)
    return scale if gamma is None else gamma * scale


def scale_output_channels(kernel, scale, depthwise=False):
    """Multiplies each output channel of `kernel` by `scale[channel]`.

    The output channels are the last kernel axis, except for depthwise
    kernels `(..., in_channels, multiplier)` where output channel
    `i * multiplier + m` is kernel entry `[..., i, m]`.
    """
    if depthwise:
        scale = tf.reshape(scale, kernel.shape[-2:])
    return kernel * scale


def fold(
    kernel, bias, gamma, beta, moving_mean, moving_variance, epsilon, depthwise=False
):
    """Kernel and bias of the single layer equal to layer + inference BN.

    Args:
        kernel: the layer's kernel.
        bias: the layer's bias or None.
        gamma, beta: BN scale and offset (None when disabled).
        moving_mean, moving_variance: BN moving statistics.
        epsilon: BN epsilon.
        depthwise: whether `kernel` is a depthwise kernel.

    Returns:
        `(folded_kernel, folded_bias)`.
    """
    scale = batch_norm_scale(gamma, moving_variance, epsilon)
    centered = -moving_mean if bias is None else bias - moving_mean
    folded_bias = scale * centered
    if beta is not None:
        folded_bias = folded_bias + beta
    return scale_output_channels(kernel, scale, depthwise), folded_bias
