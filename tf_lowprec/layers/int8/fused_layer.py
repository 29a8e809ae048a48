"""`Int8Fused`: a Dense/Conv layer, its BatchNormalization and ReLU as one int8 op."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from tf_lowprec.layers.int8 import batch_norm_fold, fake_quant
from tf_lowprec.layers.int8.activation_quantizer import ActivationQuantizer

if TYPE_CHECKING:
    from tensorflow.types.experimental import TensorLike

# Class names of the layers `Int8Fused` can hold.
LINEAR_LAYERS = ("Dense", "Conv1D", "Conv2D", "DepthwiseConv2D")
ACTIVATIONS = {"linear": None, "relu": tf.nn.relu, "relu6": tf.nn.relu6}


def _moments(x, axes):
    """Batch mean and variance over `axes`, over the global batch under tf.distribute.

    With several replicas in sync, Keras's synchronized moments (sums
    all-reduced across replicas); on one replica the plain ones (as Keras's
    BatchNormalization computes them), without the all-reduce bookkeeping
    (an all-ones tensor the size of `x`, summed).
    """
    context = tf.distribute.get_replica_context()
    synchronized = context is not None and context.num_replicas_in_sync > 1
    return keras.ops.moments(x, axes, synchronized=synchronized)


@keras.saving.register_keras_serializable(package="tf_lowprec")
class Int8Fused(keras.layers.Layer):
    """Quantization-aware Dense/Conv1D/Conv2D/DepthwiseConv2D [+ BN] [+ ReLU/ReLU6].

    Simulates the single int8 TFLite kernel these layers become: the kernel
    is fake-quantized symmetrically per output channel (narrow range, zero
    point 0; a Dense kernel per tensor, see `fake_quant`), the bias stays float (TFLite stores it as int32 at scale
    `input_scale * weight_scale`), the activation is applied and the output
    is fake-quantized per tensor by an `ActivationQuantizer` (so ReLU/ReLU6
    is fused into the output range, as TFLite fuses it into the kernel).

    With a `batch_norm`, the quantized kernel is the folded one,
    `q(s * W)` with `s = gamma / sqrt(moving_var + eps)` (see
    `batch_norm_fold`). Inference computes `op(x, q(s W)) + beta + s (b - mu)`:
    exactly the folded layer TFLite runs. Training keeps batch statistics,
    as in Jacob et al. 2018 (section 3.2) and PyTorch's fused QAT modules:

        z = op(x, q(s W)) / s + b          (the layer's output, unscaled)
        y = gamma * (z - mean_B(z)) / sqrt(var_B(z) + eps) + beta

    and updates the moving statistics from `mean_B, var_B` with the BN
    momentum. Batch statistics are synchronized across replicas under a
    `tf.distribute` strategy (`keras.ops.moments(..., synchronized=True)`).

    Args:
        layer: the float layer (a `Dense`, `Conv1D`, `Conv2D` or
            `DepthwiseConv2D` with a linear activation), or its serialized
            form.
        batch_norm: optional `BatchNormalization` on the last axis that
            follows `layer`, or its serialized form.
        activation: `"linear"`, `"relu"` or `"relu6"`, applied before the
            output quantization.
        ema_decay: decay of the output range's moving averages.
        quantize_output: False when the only reader requantizes the output
            itself (a Concatenate: TFLite writes the kernel's output
            straight onto the concatenation's grid).
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        layer: keras.layers.Layer | dict[str, Any],
        batch_norm: keras.layers.BatchNormalization | dict[str, Any] | None = None,
        activation: str = "linear",
        ema_decay: float = 0.999,
        quantize_output: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        if isinstance(batch_norm, dict):
            batch_norm = keras.saving.deserialize_keras_object(batch_norm)
        if type(layer).__name__ not in LINEAR_LAYERS:
            raise ValueError(
                f"`layer` must be one of {list(LINEAR_LAYERS)}. Received: layer={layer!r}"
            )
        if keras.activations.serialize(layer.activation) != "linear":
            raise ValueError(
                "`layer` must have a linear activation (pass the activation as "
                f"`activation`). Received: layer={layer.name!r} with activation "
                f"{keras.activations.serialize(layer.activation)!r}"
            )
        if batch_norm is not None and type(batch_norm).__name__ != "BatchNormalization":
            raise ValueError(
                f"`batch_norm` must be a BatchNormalization or None. Received: batch_norm={batch_norm!r}"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {list(ACTIVATIONS)}. Received: activation={activation!r}"
            )
        self.layer = layer
        self.batch_norm = batch_norm
        self.activation = activation
        self.ema_decay = ema_decay
        self.quantize_output = bool(quantize_output)
        self.output_quantizer = (
            ActivationQuantizer(ema_decay, name="output_quantizer")
            if quantize_output
            else None
        )
        self._depthwise = type(layer).__name__ == "DepthwiseConv2D"

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        # A deserialized sublayer may arrive built (its own build_config).
        if not self.layer.built:
            self.layer.build(input_shape)
        output_shape = self.layer.compute_output_shape(input_shape)
        if self.batch_norm is not None and not self.batch_norm.built:
            self.batch_norm.build(output_shape)
        if self.output_quantizer is not None:
            self.output_quantizer.build(output_shape)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.layer.compute_output_shape(input_shape)

    # -- the pieces ---------------------------------------------------------

    def _linear(self, inputs, kernel):
        layer = self.layer
        if type(layer).__name__ == "Dense":
            return keras.ops.matmul(inputs, kernel)
        if self._depthwise:
            return keras.ops.depthwise_conv(
                inputs,
                kernel,
                strides=layer.strides,
                padding=layer.padding,
                dilation_rate=layer.dilation_rate,
                data_format=layer.data_format,
            )
        if type(layer).__name__ == "Conv1D":
            return self._conv1d(inputs, kernel)
        return layer.convolution_op(inputs, kernel)

    def _conv1d(self, inputs, kernel):
        # As a 1xk Conv2D on (batch, 1, steps, channels), with the kernel given
        # its leading 1 before quantization: the converter then sees
        # FakeQuant -> Conv2D (a reshape between them breaks its per-channel
        # axis bookkeeping).
        layer = self.layer
        if kernel.shape.rank == 3:  # float kernel (k, in, out), not yet expanded
            kernel = tf.expand_dims(kernel, 0)
        outputs = tf.nn.conv2d(
            tf.expand_dims(inputs, 1),
            kernel,
            strides=[1, 1, layer.strides[0], 1],
            padding=layer.padding.upper(),
            dilations=[1, 1, layer.dilation_rate[0], 1],
        )
        return tf.squeeze(outputs, 1)

    def _quantize_kernel(self, kernel):
        if type(self.layer).__name__ == "Dense":
            return fake_quant.quantize_weights_per_tensor(kernel)
        if type(self.layer).__name__ == "Conv1D":
            return fake_quant.quantize_weights_per_channel(tf.expand_dims(kernel, 0))
        if not self._depthwise:
            return fake_quant.quantize_weights_per_channel(kernel)
        shape = kernel.shape
        flat = tf.reshape(kernel, list(shape[:-2]) + [shape[-2] * shape[-1]])
        return tf.reshape(fake_quant.quantize_weights_per_channel(flat), shape)

    def _bn_variables(self):
        bn = self.batch_norm
        gamma = bn.gamma if bn.scale else None
        beta = bn.beta if bn.center else None
        return gamma, beta

    def folded_weights(self) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Float kernel and bias of the folded layer (before quantization).

        Without a batch norm these are the layer's own (bias may be None).
        """
        bias = self.layer.bias if self.layer.use_bias else None
        if self.batch_norm is None:
            return tf.convert_to_tensor(self.layer.kernel), bias
        gamma, beta = self._bn_variables()
        bn = self.batch_norm
        return batch_norm_fold.fold(
            self.layer.kernel,
            bias,
            gamma,
            beta,
            bn.moving_mean,
            bn.moving_variance,
            bn.epsilon,
            depthwise=self._depthwise,
        )

    def _batch_norm_training(self, inputs, quantized_kernel, scale):
        """Training output: batch normalization of the unfolded layer, in one pass.

        With `c = op(x, q(s W))` (the convolution with the quantized folded
        kernel, computed once) the unfolded layer's output is `z = c / s + b`,
        so per channel `mean_B(z) = mean_B(c) / s + b`, `var_B(z) =
        var_B(c) / s^2`, and the batch-normalized output

            y = gamma (z - mean_B(z)) / sqrt(var_B(z) + eps) + beta
              = a c + beta + (b - mean_B(z)) g,
            g = gamma / sqrt(var_B(z) + eps),   a = g / s,

        is one multiply-add over `c` (the statistics are per-channel
        vectors). The same function as dividing `c` by `s`, adding `b` and
        normalizing (Jacob et al. 2018, section 3.2; PyTorch's `_ConvBnNd`),
        with two elementwise passes over the activations instead of up to
        six, forward and backward.
        `b` cancels in `y`: its gradient is exactly zero (in the float
        Conv + BN it is zero up to rounding).
        The moving statistics are updated from `mean_B(z), var_B(z)`.
        """
        bn = self.batch_norm
        gamma, beta = self._bn_variables()
        outputs = self._linear(inputs, quantized_kernel)
        mean, variance = _moments(outputs, list(range(outputs.shape.rank - 1)))
        mean = mean / scale
        if self.layer.use_bias:
            mean = mean + self.layer.bias
        variance = variance / tf.square(scale)
        momentum = bn.momentum
        bn.moving_mean.assign(bn.moving_mean * momentum + mean * (1.0 - momentum))
        bn.moving_variance.assign(
            bn.moving_variance * momentum + variance * (1.0 - momentum)
        )
        gain = tf.math.rsqrt(variance + bn.epsilon)
        if gamma is not None:
            gain = gain * gamma
        centre = -mean
        if self.layer.use_bias:
            centre = centre + self.layer.bias
        shift = centre * gain
        if beta is not None:
            shift = shift + beta
        return outputs * (gain / scale) + shift

    def call(self, inputs: TensorLike, training: bool | None = None) -> tf.Tensor:
        kernel, bias = self.folded_weights()
        quantized_kernel = self._quantize_kernel(kernel)
        if training and self.batch_norm is not None:
            gamma, _ = self._bn_variables()
            bn = self.batch_norm
            scale = batch_norm_fold.batch_norm_scale(
                gamma, bn.moving_variance, bn.epsilon
            )
            outputs = self._batch_norm_training(inputs, quantized_kernel, scale)
        else:
            outputs = self._linear(inputs, quantized_kernel)
            if bias is not None:
                outputs = outputs + bias
        activation = ACTIVATIONS[self.activation]
        if activation is not None:
            outputs = activation(outputs)
        if self.output_quantizer is None:
            return outputs
        if training:
            self.output_quantizer.update(outputs, nonnegative=activation is not None)
        return self.output_quantizer.fake_quantize(outputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "layer": keras.saving.serialize_keras_object(self.layer),
                "batch_norm": None
                if self.batch_norm is None
                else keras.saving.serialize_keras_object(self.batch_norm),
                "activation": self.activation,
                "ema_decay": self.ema_decay,
                "quantize_output": self.quantize_output,
            }
        )
        return config
