"""tf_lowprec: sparse and low-precision training for Keras 3 (TensorFlow backend).

Subpackages (all imported by `import tf_lowprec`):
  optimizers  GRDA, ProximalSGD, ProximalAdagrad, SVRG, HALP, LowPrecision,
              swalp(); `get(name)` for the named baseline set.
  formats     FixedPoint, BlockFloatingPoint, FloatingPoint, IntegerAffine.
  ops         quantize / rounding / proximal operators (pure tensor functions).
  layers      Quantize, QuantizedDense, QuantizedConv2D, quantize_model,
              quantize_weights (post-training integer weights).
  pruning     sparsity report, magnitude and structured (filter) pruning.
  training    callbacks, schedules, losses, VarianceReduced (SVRG/HALP).
  data        MNIST / Fashion-MNIST / CIFAR loaders (local files first).
  models      mlp, cnn, resnet18, vgg16 (Keras functional, logits out).
  experiments sweep and scaling runners, result files and plots.
"""

__version__ = "0.1.0"

from tf_lowprec import formats  # noqa: E402,F401
from tf_lowprec import ops  # noqa: E402,F401
from tf_lowprec import optimizers  # noqa: E402,F401
from tf_lowprec import layers  # noqa: E402,F401
from tf_lowprec import data  # noqa: E402,F401
from tf_lowprec import models  # noqa: E402,F401
from tf_lowprec import pruning  # noqa: E402,F401
from tf_lowprec import training  # noqa: E402,F401
from tf_lowprec import experiments  # noqa: E402,F401
