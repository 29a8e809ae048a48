"""`to_tflite`: a full-integer (int8) TFLite flatbuffer from a Keras 3 model."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    import keras

from tf_lowprec.export.calibration import representative_dataset
from tf_lowprec.export.tflite_ops import kernel_types
from tf_lowprec.layers.int8 import activation_quantizers, untrained_quantizers

IO_DTYPES = {"float32": None, "int8": tf.int8}


def _check(path, io_dtype, calibration_samples):
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a file path. Received: path={path!r}")  # noqa: TRY004
    if io_dtype not in IO_DTYPES:
        raise ValueError(
            f"`io_dtype` must be one of {list(IO_DTYPES)}. Received: io_dtype={io_dtype!r}"
        )
    if (
        isinstance(calibration_samples, bool)
        or not isinstance(calibration_samples, int)
        or (calibration_samples < 1)
    ):
        raise ValueError(
            "`calibration_samples` must be a positive int. "
            f"Received: calibration_samples={calibration_samples!r}"
        )


def to_tflite(
    model: keras.Model,
    path: str | os.PathLike[str],
    representative_data: np.ndarray | tf.data.Dataset | Iterable[Any] | None = None,
    io_dtype: str = "float32",
    calibration_samples: int = 500,
) -> str | os.PathLike[str]:
    """Converts `model` to a full-integer TFLite model and writes it to `path`.

    Two routes through TensorFlow's own converter (SavedModel ->
    `tf.lite.TFLiteConverter`, `Optimize.DEFAULT`, ops restricted to
    `TFLITE_BUILTINS_INT8`), both giving int8 weights (per output channel),
    int8 activations and int32 biases:

    * a quantization-aware model from
      `tf_lowprec.layers.quantize_model(model, scheme="int8")`, trained:
      the converter reads the learned ranges from its FakeQuant ops (no
      calibration; `representative_data`, if given, only serves tensors
      that have no learned range);
    * a float model (post-training quantization): the converter calibrates
      every activation range on `representative_data`.

    Args:
        model: a Keras 3 model.
        path: where to write the `.tflite` file.
        representative_data: calibration inputs (see
            `export.calibration.representative_dataset`): an array of samples,
            a `tf.data.Dataset` or an iterable of batches. Required for a
            model without int8 quantization-aware layers.
        io_dtype: `"float32"` (default: the model quantizes its input and
            dequantizes its output) or `"int8"` (the caller passes and
            receives int8 tensors, with the scale and zero point given in
            the interpreter's input/output details).
        calibration_samples: at most this many samples (array input) or
            batches are used for calibration. Defaults to 500.

    Returns:
        `path`.

    Raises:
        ValueError: a quantization-aware model whose activation ranges were
            never learned (train or calibrate it first), or a float model
            without `representative_data`.
    """
    _check(path, io_dtype, calibration_samples)
    quantizers = activation_quantizers(model)
    if quantizers:
        untrained = untrained_quantizers(model)
        if untrained:
            raise ValueError(
                "The quantization-aware model has activation ranges that were never "
                f"learned ({len(untrained)} of {len(quantizers)}, e.g. {untrained[:3]}): "
                "train it with `fit` (or run it once with `training=True` on "
                "representative inputs) before exporting."
            )
    elif representative_data is None:
        raise ValueError(
            f"Model {model.name!r} has no int8 quantization-aware layers, so its "
            "activation ranges must be calibrated: pass `representative_data` (for "
            "example `representative_data=x_train[:500]`, a few hundred typical "
            "inputs), or make it quantization-aware first with "
            "`tf_lowprec.layers.quantize_model(model, scheme='int8')` and train it."
        )
    with tempfile.TemporaryDirectory() as saved_model_dir:
        model.export(saved_model_dir, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if not quantizers:
            # Post-training: calibrate, and refuse any op without an int8 kernel.
            # (A quantization-aware graph is integer through its FakeQuant ops;
            # the converter's int8-only check wrongly asks it for calibration
            # data, so its kernels are checked after conversion instead.)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if representative_data is not None:
            converter.representative_dataset = representative_dataset(
                representative_data, calibration_samples
            )
        if IO_DTYPES[io_dtype] is not None:
            converter.inference_input_type = IO_DTYPES[io_dtype]
            converter.inference_output_type = IO_DTYPES[io_dtype]
        flatbuffer = converter.convert()
    with open(path, "wb") as file:
        file.write(flatbuffer)
    float_kernels = [row for row in kernel_types(path) if "float32" in row.values()]
    if float_kernels:
        raise ValueError(
            f"The converted model at {path!r} still has float kernels {float_kernels}: "
            "some layer before them has no learned range (a layer left float by "
            "quantize_model); pass `representative_data` to calibrate it."
        )
    return path
