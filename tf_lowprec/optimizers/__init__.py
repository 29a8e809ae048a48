"""Keras 3 optimizers for sparse and low-precision training."""

from tf_lowprec.optimizers.grda import GRDA
