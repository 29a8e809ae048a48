"""tf_lowprec: sparse and low-precision training for Keras 3 (TensorFlow backend).

Subpackages (all imported by `import tf_lowprec`):
  optimizers  GRDA, ProximalSGD, ProximalAdagrad, SVRG, HALP, LowPrecision,
              SWA; `get(name)` for the named baseline set.
  formats     FixedPoint, BlockFloatingPoint, FloatingPoint, IntegerAffine,
              ScaledInteger.
  ops         quantize / rounding / proximal operators (pure tensor functions).
  layers      Quantize, QuantizedDense, QuantizedConv2D, quantize_model,
              quantize_weights (post-training integer weights).
  pruning     sparsity report, magnitude and structured (filter) pruning.
  training    callbacks, schedules, losses, VarianceReduced (SVRG/HALP).
  recipes     one-call setups: swalp(), low_precision_sgd(),
              quantize_activations().
  data        MNIST / Fashion-MNIST / CIFAR loaders (local files first).
  models      mlp, cnn, resnet18, vgg16 (Keras functional, logits out).
  distribute  model.fit under MultiWorkerMirroredStrategy, local clusters.
  memory      report(model, optimizer): bytes of weights, optimizer state and
              gradients per parameter (and in float32).
  export      to_tflite: full-integer (int8) TFLite from an int8 QAT model
              (layers.quantize_model(model, scheme="int8")) or, calibrated,
              from a float model.
  experiments sweep and scaling runners, result files and plots.
"""

__version__ = "0.1.0"

import importlib
import os
import sys

# Imported in this order by `import tf_lowprec` (this also registers every
# Keras-serializable class, so `keras.saving.load_model` finds them).
_SUBPACKAGES = (
    "formats", "ops", "optimizers", "layers", "data", "models", "pruning",
    "training", "callbacks", "recipes", "distribute", "memory", "export", "experiments",
)
# The console scripts parse their arguments before importing TensorFlow
# (`tf-lowprec --help` answers at once); their subcommands import what they use.
_CONSOLE_SCRIPTS = ("tf-lowprec", "tf-lowprec-quickstart")


def __getattr__(name):
    """Imports a subpackage on first use when the eager import was skipped."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if os.path.basename((getattr(sys, "argv", None) or [""])[0]) not in _CONSOLE_SCRIPTS:
    for _name in _SUBPACKAGES:
        importlib.import_module(f"{__name__}.{_name}")
