"""tf_lowprec: sparse and low-precision training for Keras 3 (TensorFlow backend).

Subpackages:
  optimizers  Keras 3 optimizers (GRDA, ...) and the named baseline set.
  data        MNIST / Fashion-MNIST / CIFAR loaders (local files first).
  models      mlp, cnn, resnet18, vgg16 (Keras functional).
  pruning     sparsity report and pruning utilities.
"""

__version__ = "0.1.0"
