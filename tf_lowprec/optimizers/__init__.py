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
from tf_lowprec.optimizers.low_precision import LowPrecision
from tf_lowprec.optimizers.swalp import SWALPSetup
from tf_lowprec.optimizers.swalp import low_precision_sgd
from tf_lowprec.optimizers.swalp import quantize_activations
from tf_lowprec.optimizers.swalp import swalp
from tf_lowprec.optimizers.swalp import swalp_formats
from tf_lowprec.training.swa import SWA
