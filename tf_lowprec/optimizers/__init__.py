"""Keras 3 optimizers for sparse and low-precision training."""

from tf_lowprec.optimizers.grda import GRDA
from tf_lowprec.optimizers.proximal_adagrad import ProximalAdagrad
from tf_lowprec.optimizers.proximal_sgd import ProximalSGD
from tf_lowprec.optimizers.registry import available
from tf_lowprec.optimizers.registry import get
from tf_lowprec.optimizers.registry import register
from tf_lowprec.optimizers.svrg import SVRG
from tf_lowprec.optimizers.halp import HALP

register("svrg", SVRG)
register("halp", HALP)
