"""Deployment: full-integer TFLite export of quantization-aware and float models."""

from tf_lowprec.export.tflite import to_tflite
from tf_lowprec.export.tflite_ops import kernel_types

__all__ = ["kernel_types", "to_tflite"]
