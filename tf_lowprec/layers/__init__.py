"""Quantize layers, model conversion and post-training weight quantization."""

from tf_lowprec.layers.integer_weights import IntegerConv2D, IntegerDense
from tf_lowprec.layers.quantize_layer import Quantize
from tf_lowprec.layers.quantize_model import quantize_model
from tf_lowprec.layers.quantize_weights import WeightQuantizationReport, quantize_weights
from tf_lowprec.layers.quantized_conv2d import QuantizedConv2D
from tf_lowprec.layers.quantized_dense import QuantizedDense
