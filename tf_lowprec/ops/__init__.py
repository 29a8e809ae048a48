"""Pure tensor functions (no variables) shared by layers and optimizers."""

from tf_lowprec.ops.prox import prox_elastic_net
from tf_lowprec.ops.prox import prox_l1
from tf_lowprec.ops.prox import prox_l2
from tf_lowprec.ops.prox import soft_threshold
