"""int8 quantization-aware training that the TFLite converter turns into integer kernels."""

from tf_lowprec.layers.int8.activation_quantizer import ActivationQuantizer
from tf_lowprec.layers.int8.concatenate import Int8Concatenate
from tf_lowprec.layers.int8.fused_layer import Int8Fused
from tf_lowprec.layers.int8.model_ranges import (
    activation_quantizers,
    untrained_quantizers,
)
from tf_lowprec.layers.int8.scheme import quantize_model_int8

__all__ = [
    "ActivationQuantizer",
    "Int8Concatenate",
    "Int8Fused",
    "activation_quantizers",
    "quantize_model_int8",
    "untrained_quantizers",
]
